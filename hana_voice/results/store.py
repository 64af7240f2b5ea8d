"""The async face of the results database, for call sessions, the outbox and routes.

The database is a :class:`~hana_voice.results.backend.Backend`: SQLite under DATA_DIR (the
default) or PostgreSQL at DATABASE_URL, shared by replicas. Every call into it runs in a
worker thread (``trio.to_thread.run_sync``) behind a ``CapacityLimiter`` as wide as the
backend (1 for SQLite, the pool size for PostgreSQL), never on the event loop.

Cancellation: threads are not abandoned (``abandon_on_cancel=False``). A cancelled caller
waits for its transaction to commit or roll back, so a write is never left half-known; a
cancel that lands before the thread starts leaves the write unwritten and held in memory, as
below. Call sessions should still shield ``finish_call`` in their final cleanup.

When the database refuses a write (PostgreSQL down, disk full, SQLite locked past the
retries) the store becomes *degraded* and calls go on:

- ``start_call`` and ``record_answer`` do not raise. They keep the write in memory, log the
  session id and the cause, and return False. While degraded they do not even try (a call
  must not wait DATABASE_TIMEOUT per answer): the write joins its call's held writes.
- ``finish_call`` always tries; if its call's writes still cannot be written it raises
  StoreError and keeps them.
- :meth:`ResultStore.maintain` (run in the app's nursery) writes the held writes back, call by
  call and in order, as soon as the database answers again, then leaves degraded; the outbox
  is woken for the calls that finished meanwhile. ``aclose`` tries once more; what fails
  then is lost and logged (ids and counts, never answers).

A call's writes are serialised by a per-call lock, so held writes are always written before
newer ones. Misuse (an unknown status, an answer for a call that was never started) raises
ValueError and is not kept.

Start-up: SQLite (one process per file) marks every call left ``in_progress`` ``incomplete``
and queues it. PostgreSQL is shared, so a replica only recovers the calls of replicas that
have not sent a heartbeat for OUTBOX_LEASE_SECONDS; :meth:`maintain` keeps doing so.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import trio

from hana_voice.errors import StoreError
from hana_voice.results.backend import Backend, open_backend
from hana_voice.results.database import Claim, ResultDatabase
from hana_voice.results.deliveries import DELIVERIES
from hana_voice.results.tables import AnswerRecord, CallFinish, CallStart, Write, check_finish
from hana_voice.settings import Settings

T = TypeVar("T")

log = logging.getLogger("hana_voice.results")


def default_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ResultStore:
    """Durable call results. Build with :meth:`connect`/:meth:`from_settings`, or ``open``."""

    def __init__(
        self,
        db: Backend,
        *,
        clock: Callable[[], float] = time.time,
        replica_id: str | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.replica_id = replica_id or default_replica_id()
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._limiter = trio.CapacityLimiter(db.max_size)
        self._unwritten: dict[str, list[Write]] = {}
        self._call_locks: dict[str, trio.Lock] = {}
        self._finished = trio.Event()
        self._closed = False
        #: Since when (epoch) writes fail; None while the database takes them.
        self.degraded_since: float | None = None
        self.last_error: str | None = None
        #: Counters for /metrics.
        self.write_failures = 0
        self.flushed_writes = 0
        self.lost_writes = 0

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
        replica_id: str | None = None,
        lease_seconds: float = 60.0,
    ) -> ResultStore:
        """Open (creating if needed) the SQLite database at ``path``; recover interrupted calls.

        ``recover`` assumes one process per database file (one Hypercorn worker per
        DATA_DIR): calls still ``in_progress`` at start-up belong to a process that died.
        """
        db = await trio.to_thread.run_sync(
            lambda: ResultDatabase(
                path, busy_timeout=busy_timeout, lock_retries=lock_retries, synchronous=synchronous
            )
        )
        store = cls(db, clock=clock, replica_id=replica_id, lease_seconds=lease_seconds)
        await store._start(recover, all_in_progress=True)
        return store

    @classmethod
    async def from_settings(
        cls, settings: Settings, *, recover: bool = True, clock: Callable[[], float] = time.time
    ) -> ResultStore:
        """The store the settings name (PostgreSQL when DATABASE_URL is set), migrated."""
        db = await trio.to_thread.run_sync(open_backend, settings)
        store = cls(
            db,
            clock=clock,
            replica_id=settings.replica_id,
            lease_seconds=settings.outbox_lease_seconds,
        )
        await store._start(recover, all_in_progress=db.backend == "sqlite")
        return store

    async def _start(self, recover: bool, *, all_in_progress: bool) -> None:
        try:
            await self.heartbeat()
            if recover:
                # A fresh process has no calls yet: calls under its own replica id belong to
                # its previous life (a restart keeps RAILWAY_REPLICA_ID / REPLICA_ID).
                recovered = await self.recover_orphans(
                    all_in_progress=all_in_progress, include_own=True
                )
                if recovered:
                    log.warning("marked %d interrupted call(s) incomplete and queued", recovered)
        except BaseException:
            await trio.to_thread.run_sync(self.db.close)
            raise

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, **options: Any) -> AsyncIterator[ResultStore]:
        store = await cls.connect(path, **options)
        try:
            yield store
        finally:
            with trio.CancelScope(shield=True):
                await store.aclose()

    @classmethod
    @asynccontextmanager
    async def open_settings(cls, settings: Settings, **options: Any) -> AsyncIterator[ResultStore]:
        store = await cls.from_settings(settings, **options)
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
                await self._apply(session_id, [], force=True)
            except StoreError as exc:
                lost = len(self._unwritten.pop(session_id, []))
                self.lost_writes += lost
                log.error("results of call %s lost (%d writes): %s", session_id, lost, exc)
        await trio.to_thread.run_sync(self.db.close, limiter=self._limiter)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    # --- writes, held in memory when the database refuses them ----------------------------

    def _lock_for(self, session_id: str) -> trio.Lock:
        lock = self._call_locks.get(session_id)
        if lock is None:
            lock = self._call_locks[session_id] = trio.Lock()
        return lock

    def _release_lock(self, session_id: str, lock: trio.Lock) -> None:
        if session_id not in self._unwritten and lock.statistics().tasks_waiting == 0:
            self._call_locks.pop(session_id, None)

    async def _apply(self, session_id: str, writes: list[Write], *, force: bool) -> list[str]:
        """Queue ``writes`` behind what this call still holds, then write them all at once.

        The writes join the call's held list before any checkpoint, so a cancel while
        waiting keeps them. Not ``force``d while degraded: nothing is tried, StoreError.
        """
        if writes:
            self._unwritten.setdefault(session_id, []).extend(writes)
        if self.degraded_since is not None and not force:
            # Not even the call's lock: the flusher may hold it, waiting on the database.
            raise StoreError(f"held in memory: {self.last_error}")
        lock = self._lock_for(session_id)
        try:
            async with lock:
                return await self._drain(session_id, writes, force=force)
        finally:
            self._release_lock(session_id, lock)

    async def _drain(self, session_id: str, writes: list[Write], *, force: bool) -> list[str]:
        batch = self._unwritten.pop(session_id, [])
        if not batch:
            return []  # another task wrote them (ours included) while we waited
        if self.degraded_since is not None and not force:
            self._unwritten[session_id] = batch
            raise StoreError(f"held in memory: {self.last_error}")
        try:
            queued = await self._run(self.db.apply, batch, self._clock())
        except StoreError as exc:
            self._hold(session_id, batch)
            self._degrade(str(exc))
            raise
        except trio.Cancelled:
            # Nothing was written: a cancel lands only before the thread starts (threads are
            # not abandoned), and a failed transaction is rolled back.
            self._hold(session_id, batch)
            raise
        except BaseException:
            # Misuse in ``writes``: drop the faulty writes, keep what was held before.
            mine = {id(write) for write in writes}
            self._hold(session_id, [write for write in batch if id(write) not in mine])
            raise
        self.flushed_writes += max(0, len(batch) - len(writes))
        if self.degraded_since is not None and not self._unwritten:
            log.warning(
                "results store recovered after %.1f s; held writes written",
                self._clock() - self.degraded_since,
            )
            self.degraded_since = None
            self.last_error = None
        if queued:
            self._notify_finished()
        return queued

    def _hold(self, session_id: str, batch: list[Write]) -> None:
        """Put ``batch`` back in front of what was queued for the call meanwhile."""
        later = self._unwritten.pop(session_id, [])
        if batch or later:
            self._unwritten[session_id] = batch + later

    def _degrade(self, error: str) -> None:
        self.write_failures += 1
        self.last_error = error
        if self.degraded_since is None:
            self.degraded_since = self._clock()
            log.error("results store degraded, writes held in memory: %s", error)

    async def _kept_on_failure(self, session_id: str, write: Write) -> bool:
        try:
            await self._apply(session_id, [write], force=False)
        except StoreError as exc:
            held = len(self._unwritten.get(session_id, ()))
            log.warning("call %s: %d write(s) held in memory: %s", session_id, held, exc)
            return False
        return True

    async def flush(self) -> bool:
        """Write every held write, call by call; True when none is left."""
        for session_id in list(self._unwritten):
            try:
                await self._apply(session_id, [], force=True)
            except StoreError:
                return False
            except ValueError as exc:
                # Cannot happen for writes that were valid when held; never loop on one.
                lost = len(self._unwritten.pop(session_id, []))
                self.lost_writes += lost
                log.error("held writes of call %s dropped (%d): %s", session_id, lost, exc)
        return not self._unwritten

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
        start = CallStart(
            session_id, template_id, question_count, dict(metadata), handover, self.replica_id
        )
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

        Raises StoreError when the call's writes cannot be made durable now (they are kept
        and written by :meth:`maintain`); ValueError for an unknown status, a malformed
        outcome or an unknown delivery kind.
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
        await self._apply(session_id, [finish], force=True)

    @property
    def unwritten(self) -> int:
        """How many writes are held in memory because the database refused them."""
        return sum(len(batch) for batch in self._unwritten.values())

    def health(self) -> dict[str, Any]:
        """For /health: the backend, ``ok`` or ``degraded``, and the writes held in memory."""
        state = "degraded" if self.degraded_since is not None or self._unwritten else "ok"
        body: dict[str, Any] = {
            "backend": self.db.backend,
            "state": state,
            "unwritten": self.unwritten,
            "unwritten_calls": len(self._unwritten),
        }
        if self.degraded_since is not None:
            body["degraded_seconds"] = round(self._clock() - self.degraded_since, 1)
        return body

    # --- replicas: heartbeats and orphaned calls -----------------------------------------

    async def heartbeat(self) -> None:
        now = self._clock()
        await self._run(self.db.heartbeat, self.replica_id, now, now - 7 * 86400.0)

    async def recover_orphans(
        self, *, all_in_progress: bool = False, include_own: bool = False
    ) -> int:
        """Finish as ``incomplete`` (and queue) the calls of replicas silent for a lease."""
        now = self._clock()
        alive_since = None if all_in_progress else now - self.lease_seconds

        def recover() -> list[str]:
            return self.db.recover_interrupted(
                now, replica_id=self.replica_id, alive_since=alive_since, restarted=include_own
            )

        queued = await self._run(recover)
        if queued:
            self._notify_finished()
        return len(queued)

    async def maintain(
        self,
        *,
        retry_interval: float = 0.5,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Forever: write held writes back once the database answers (every
        ``retry_interval`` while degraded), send a heartbeat and recover orphaned calls
        (every quarter lease). Run it in the app's nursery."""
        task_status.started()
        beat_every = self.lease_seconds / 4
        next_beat = self._clock() + beat_every
        while True:
            if self._unwritten or self.degraded_since is not None:
                if self._unwritten:
                    await self.flush()
                else:
                    await self._probe()
            if self._clock() >= next_beat:
                next_beat = self._clock() + beat_every
                try:
                    await self.heartbeat()
                    recovered = await self.recover_orphans()
                    if recovered:
                        log.warning("queued %d call(s) of a silent replica", recovered)
                except StoreError as exc:
                    log.warning("heartbeat failed: %s", exc)
            degraded = self._unwritten or self.degraded_since is not None
            await trio.sleep(retry_interval if degraded else min(beat_every, 5.0))

    async def _probe(self) -> None:
        """Degraded with nothing held: leave degraded once the database answers a read."""
        try:
            await self._run(self.db.next_due_at)
        except StoreError:
            return
        if self.degraded_since is not None and not self._unwritten:
            log.warning("results store recovered after %.1f s", self._clock() - self.degraded_since)
            self.degraded_since = None
            self.last_error = None

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
