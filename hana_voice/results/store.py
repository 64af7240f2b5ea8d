"""The async face of the results database, for call sessions, the outbox and routes.

Every SQLite call runs in a worker thread (``trio.to_thread.run_sync``) behind a
``CapacityLimiter(1)``: one thread at a time per store, never the event loop. The synchronous
:class:`ResultDatabase` also holds a lock, so tests and benchmarks may share it safely.

Cancellation: threads are not abandoned (``abandon_on_cancel=False``). A cancelled caller
waits for its transaction to commit or roll back (at most ``busy_timeout`` per try), so a
write is never left half-known; a cancel that lands before the thread starts leaves the
write unwritten and held in memory, as below. Call sessions should still shield
``finish_call`` in their final cleanup so the status and the hand-over are recorded when
the call is torn down.

When a write fails (disk full, database locked past the retries): ``start_call`` and
``record_answer`` do not raise. They log the session id and the cause, keep the write in
memory and return False; the next write for the same call (at the latest ``finish_call``)
first replays what was kept, in the same transaction. ``finish_call`` raises StoreError if
that still fails and keeps everything for one last try in :meth:`ResultStore.aclose`; what
fails then is lost and logged (ids and counts, never answers). Misuse (an unknown status, an
answer for a call that was never started) raises ValueError and is not kept.

Start-up (:meth:`ResultStore.connect`) marks calls that a dead process left ``in_progress``
as ``incomplete`` and queues their hand-over, so a restart loses nothing already written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import trio

from hana_voice.errors import StoreError
from hana_voice.results.database import Claim, ResultDatabase
from hana_voice.results.deliveries import DELIVERIES
from hana_voice.results.tables import AnswerRecord, CallFinish, CallStart, Write, check_finish

T = TypeVar("T")

log = logging.getLogger("hana_voice.results")


class ResultStore:
    """Durable call results. Build with :meth:`connect` or ``async with ResultStore.open()``."""

    def __init__(self, db: ResultDatabase, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock
        self._limiter = trio.CapacityLimiter(1)
        self._unwritten: dict[str, list[Write]] = {}
        self._finished = trio.Event()
        self._closed = False

    @classmethod
    async def connect(
        cls,
        path: Path,
        *,
        recover: bool = True,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        lock_retries: int = 3,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> ResultStore:
        """Open (creating if needed) the database at ``path``; recover interrupted calls.

        ``recover`` assumes one process per database file (one Hypercorn worker per
        DATA_DIR): calls still ``in_progress`` at start-up belong to a process that died.
        """
        db = await trio.to_thread.run_sync(
            lambda: ResultDatabase(
                path, busy_timeout=busy_timeout, lock_retries=lock_retries, synchronous=synchronous
            )
        )
        store = cls(db, clock=clock)
        if recover:
            try:
                recovered = await store._run(db.recover_interrupted, clock())
            except BaseException:
                await trio.to_thread.run_sync(db.close)
                raise
            if recovered:
                log.warning("marked %d interrupted call(s) incomplete and queued", len(recovered))
                store._notify_finished()
        return store

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, **options: Any) -> AsyncIterator[ResultStore]:
        store = await cls.connect(path, **options)
        try:
            yield store
        finally:
            with trio.CancelScope(shield=True):
                await store.aclose()

    async def aclose(self) -> None:
        """Try the writes still kept in memory once more, then close the database."""
        if self._closed:
            return
        self._closed = True
        for session_id in list(self._unwritten):
            try:
                await self._apply(session_id, [])
            except StoreError as exc:
                lost = len(self._unwritten.pop(session_id, []))
                log.error("results of call %s lost (%d writes): %s", session_id, lost, exc)
        await trio.to_thread.run_sync(self.db.close, limiter=self._limiter)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _apply(self, session_id: str, writes: list[Write]) -> list[str]:
        """Write what this call still owes plus ``writes``; keep them all on failure."""
        held = self._unwritten.pop(session_id, [])
        batch = held + writes
        if not batch:
            return []
        try:
            queued = await self._run(self.db.apply, batch, self._clock())
        except (StoreError, trio.Cancelled):
            # Nothing was written: a cancel lands only before the thread starts (threads are
            # not abandoned), and a failed transaction is rolled back.
            self._unwritten[session_id] = batch
            raise
        except BaseException:
            # Misuse in ``writes``: drop the faulty write, keep what was held before.
            if held:
                self._unwritten[session_id] = held
            raise
        if queued:
            self._notify_finished()
        return queued

    async def _kept_on_failure(self, session_id: str, write: Write) -> bool:
        try:
            await self._apply(session_id, [write])
        except StoreError as exc:
            held = len(self._unwritten.get(session_id, ()))
            log.warning("call %s: %d write(s) held in memory: %s", session_id, held, exc)
            return False
        return True

    # --- what a call session calls ------------------------------------------------------

    async def start_call(
        self,
        session_id: str,
        template_id: str,
        question_count: int,
        metadata: Mapping[str, Any],
        handover: bool = True,
    ) -> bool:
        """Record a new call (phone-number keys are stripped). False: kept in memory.

        ``handover=False`` (an anonymous call): stored, shown by ``GET /calls/<id>``, never
        queued for any delivery.
        """
        start = CallStart(session_id, template_id, question_count, dict(metadata), handover)
        return await self._kept_on_failure(session_id, start)

    async def record_answer(
        self,
        session_id: str,
        question_id: str,
        question_order: int,
        response: str,
        confidence: float | None,
        response_time_seconds: float | None,
        status: str = "answered",
    ) -> bool:
        """Store one answer in its own transaction. False: kept in memory, written later."""
        answer = AnswerRecord(
            session_id,
            question_id,
            question_order,
            response,
            confidence,
            response_time_seconds,
            status,
        )
        return await self._kept_on_failure(session_id, answer)

    async def finish_call(
        self,
        session_id: str,
        status: str,
        call_duration_seconds: float | None = None,
        *,
        outcome: str | None = None,
        outcome_detail: Mapping[str, Any] | None = None,
        deliveries: Sequence[str] = ("results",),
    ) -> None:
        """Set the final status and outcome, and queue one delivery per kind in
        ``deliveries`` (none for a call started with ``handover=False``). Once: a second
        finish is ignored.

        Raises StoreError when the call's writes cannot be made durable now; ValueError for
        an unknown status, a malformed outcome or an unknown delivery kind.
        """
        finish = CallFinish(
            session_id,
            status,
            call_duration_seconds,
            outcome,
            None if outcome_detail is None else dict(outcome_detail),
            tuple(deliveries),
        )
        check_finish(finish)
        unknown = [kind for kind in finish.deliveries if kind not in DELIVERIES]
        if unknown:
            raise ValueError(f"unknown delivery kind(s) {unknown}; one of {sorted(DELIVERIES)}")
        await self._apply(session_id, [finish])

    @property
    def unwritten(self) -> int:
        """How many writes are held in memory because the database refused them."""
        return sum(len(batch) for batch in self._unwritten.values())

    # --- reads ----------------------------------------------------------------------------

    async def get_call(self, session_id: str) -> dict[str, Any] | None:
        """The stored call with its answers and delivery state, or None if unknown."""
        return await self._run(self.db.get_call, session_id)

    async def backlog(self) -> dict[str, int]:
        return await self._run(self.db.backlog)

    # --- what the outbox worker calls -----------------------------------------------------

    def _notify_finished(self) -> None:
        self._finished.set()
        self._finished = trio.Event()

    @property
    def finished_event(self) -> trio.Event:
        """Set when the next call is queued for hand-over by this store.

        Take it before looking for work, then wait on it: a call queued in between is not
        missed.
        """
        return self._finished

    async def claim_delivery(
        self, worker_id: str, now: float, lease: float, due_by: float | None = None
    ) -> Claim | None:
        return await self._run(self.db.claim_delivery, worker_id, now, lease, due_by)

    async def settle(
        self,
        claim: Claim,
        worker_id: str,
        state: Literal["delivered", "failed", "pending"],
        now: float,
        *,
        status_code: int | None = None,
        error: str | None = None,
        next_attempt_at: float | None = None,
    ) -> bool:
        """Record a claimed delivery's outcome (see ResultDatabase.settle); ``"failed"``
        with no status fails it at once with ``error`` as the reason."""

        def settle() -> bool:
            return self.db.settle(
                claim,
                worker_id,
                state,
                now,
                status_code=status_code,
                error=error,
                next_attempt_at=next_attempt_at,
            )

        return await self._run(settle)

    async def set_config_state(self, configured: bool) -> int:
        return await self._run(self.db.set_config_state, configured)

    async def next_due_at(self) -> float | None:
        return await self._run(self.db.next_due_at)
