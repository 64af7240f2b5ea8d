"""The results database: one SQLite file under DATA_DIR, in WAL mode. Blocking.

The event loop never calls this module directly: :class:`~hana_voice.results.store.ResultStore`
runs every method in a worker thread. Tests and benchmarks may call it synchronously. One
connection is opened with ``check_same_thread=False`` and every use holds ``self._lock``, so
at most one thread is inside SQLite through a given instance. Several instances (or
processes) may share one file: SQLite's own locks and ``busy_timeout`` serialise them.

Each public write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so an answer is
durable as soon as :meth:`ResultDatabase.apply` returns. A busy or locked database is waited
for (``busy_timeout``) and retried a few times; after that, and on a full disk, a read-only
file or an I/O error, the transaction is rolled back and :class:`StoreError` is raised with a
message that names the cause (never the data). Misuse (an unknown status, an answer for a
call never started) raises ValueError.

Statuses of a call: ``in_progress`` until it ends, then one of :data:`FINAL_STATUSES`.
Delivery states of its outbox row: see :data:`DELIVERY_STATES` and docs/results.md.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from hana_voice.errors import StoreError
from hana_voice.results.handover import idempotency_key, strip_phone_numbers

IN_PROGRESS = "in_progress"
FINAL_STATUSES = ("completed", "escalated", "stopped", "incomplete", "error")
DELIVERY_STATES = ("pending", "pending_config", "delivering", "delivered", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    session_id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL,
    question_count INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    call_duration_seconds REAL
);
CREATE TABLE IF NOT EXISTS answers (
    session_id TEXT NOT NULL REFERENCES calls(session_id),
    question_id TEXT NOT NULL,
    question_order INTEGER NOT NULL,
    response TEXT NOT NULL,
    confidence REAL,
    response_time_seconds REAL,
    status TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (session_id, question_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    session_id TEXT PRIMARY KEY REFERENCES calls(session_id),
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    first_attempt_at REAL,
    claimed_by TEXT,
    claim_expires_at REAL,
    last_status INTEGER,
    last_error TEXT,
    settled_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
"""

T = TypeVar("T")

_LOCKED_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


@dataclass(frozen=True)
class CallStart:
    session_id: str
    template_id: str
    question_count: int
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class AnswerRecord:
    session_id: str
    question_id: str
    question_order: int
    response: str
    confidence: float | None
    response_time_seconds: float | None
    status: str = "answered"


@dataclass(frozen=True)
class CallFinish:
    session_id: str
    status: str
    call_duration_seconds: float | None


Write = CallStart | AnswerRecord | CallFinish


@dataclass(frozen=True)
class Claim:
    """An outbox row a worker holds for one delivery attempt; ``call`` is get_call's dict."""

    session_id: str
    idempotency_key: str
    attempts: int
    first_attempt_at: float
    call: dict[str, Any]


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    # Python reports extended codes (SQLITE_IOERR_WRITE ...); the low byte is the primary one.
    return None if code is None else int(code) & 0xFF


def _describe(exc: sqlite3.Error) -> str:
    code = _primary_code(exc)
    if code == sqlite3.SQLITE_FULL:
        return "the disk (or the database size limit) is full"
    if code == sqlite3.SQLITE_READONLY:
        return "the database file is read-only"
    if code in _LOCKED_CODES:
        return "the database stayed locked by another connection"
    if code == sqlite3.SQLITE_IOERR or code == sqlite3.SQLITE_CANTOPEN:
        return "the database file could not be read or written (I/O error)"
    return f"SQLite failed ({type(exc).__name__})"


class ResultDatabase:
    """The synchronous core: calls, answers and the outbox in one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 5.0,
        lock_retries: int = 3,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self.path = path
        self._lock_retries = lock_retries
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the results database {path}: {exc}") from None
        self._conn = conn
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # FULL syncs the WAL on every commit, so an answer survives a power cut and not
            # only a process crash (which NORMAL already survives). Cost: docs/benchmarks.
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot prepare the results database: {_describe(exc)}") from None
        if mode != "wal":
            conn.close()
            raise StoreError(f"the results database cannot use WAL mode (got {mode!r})")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- transactions -------------------------------------------------------------------

    def _run(self, what: str, body: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run ``body`` in one transaction, retrying while the database is locked."""
        with self._lock:
            for attempt in range(self._lock_retries + 1):
                conn = self._conn
                try:
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    result = body(conn)
                    conn.execute("COMMIT")
                    return result
                except sqlite3.Error as exc:
                    self._rollback()
                    code = _primary_code(exc)
                    if code in _LOCKED_CODES and attempt < self._lock_retries:
                        # busy_timeout already waited; back off a little before trying again.
                        time.sleep(0.02 * (attempt + 1))
                        continue
                    raise StoreError(f"could not {what}: {_describe(exc)}") from None
                except BaseException:
                    self._rollback()
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (it does so itself on SQLITE_FULL)

    # --- calls and answers --------------------------------------------------------------

    def apply(self, writes: Sequence[Write], now: float) -> list[str]:
        """Write ``writes`` in one transaction; return the session ids queued for hand-over."""

        def body(conn: sqlite3.Connection) -> list[str]:
            queued: list[str] = []
            for write in writes:
                if isinstance(write, CallStart):
                    _insert_call(conn, write, now)
                elif isinstance(write, AnswerRecord):
                    _upsert_answer(conn, write, now)
                elif _finish(conn, write, now):
                    queued.append(write.session_id)
            return queued

        return self._run("write call results", body, write=True)

    def start_call(
        self,
        session_id: str,
        template_id: str,
        question_count: int,
        metadata: Mapping[str, Any],
        now: float,
    ) -> None:
        self.apply([CallStart(session_id, template_id, question_count, metadata)], now)

    def record_answer(self, answer: AnswerRecord, now: float) -> None:
        self.apply([answer], now)

    def finish_call(
        self, session_id: str, status: str, call_duration_seconds: float | None, now: float
    ) -> bool:
        """Set the final status and queue the hand-over; False if it had already finished."""
        return bool(self.apply([CallFinish(session_id, status, call_duration_seconds)], now))

    def recover_interrupted(self, now: float) -> list[str]:
        """Mark calls left in progress by a dead process incomplete and queue them."""

        def body(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT session_id, started_at FROM calls WHERE status = ?", (IN_PROGRESS,)
            ).fetchall()
            for row in rows:
                _finish(conn, CallFinish(row[0], "incomplete", None), now)
            return [row[0] for row in rows]

        return self._run("recover interrupted calls", body, write=True)

    def get_call(self, session_id: str) -> dict[str, Any] | None:
        return self._run("read a call", lambda conn: _read_call(conn, session_id), write=False)

    # --- the outbox ---------------------------------------------------------------------

    def claim_delivery(self, worker_id: str, now: float, lease_seconds: float) -> Claim | None:
        """Take the next due row (or one whose holder's lease ran out), or None.

        One UPDATE inside a write transaction: two connections cannot both take a row.
        """

        def body(conn: sqlite3.Connection) -> Claim | None:
            row = conn.execute(
                "UPDATE outbox SET state = 'delivering', claimed_by = ?, claim_expires_at = ?,"
                " attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?)"
                " WHERE session_id = (SELECT session_id FROM outbox"
                "   WHERE (state = 'pending' AND next_attempt_at <= ?)"
                "      OR (state = 'delivering' AND claim_expires_at <= ?)"
                "   ORDER BY next_attempt_at LIMIT 1)"
                " RETURNING session_id, idempotency_key, attempts, first_attempt_at",
                (worker_id, now + lease_seconds, now, now, now),
            ).fetchone()
            if row is None:
                return None
            call = _read_call(conn, row[0])
            if call is None:
                raise AssertionError("an outbox row always has its call (foreign key)")
            return Claim(row[0], row[1], row[2], row[3], call)

        return self._run("claim a delivery", body, write=True)

    def settle(
        self,
        claim: Claim,
        worker_id: str,
        state: Literal["delivered", "failed", "pending"],
        now: float,
        *,
        status_code: int | None,
        error: str | None,
        next_attempt_at: float | None = None,
    ) -> bool:
        """Record a delivery attempt's outcome; False if the claim was lost meanwhile."""

        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE outbox SET state = ?, last_status = ?, last_error = ?,"
                " next_attempt_at = COALESCE(?, next_attempt_at),"
                " settled_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END,"
                " claimed_by = NULL, claim_expires_at = NULL"
                " WHERE session_id = ? AND state = 'delivering' AND claimed_by = ?",
                (
                    state,
                    status_code,
                    error,
                    next_attempt_at,
                    state,
                    now,
                    claim.session_id,
                    worker_id,
                ),
            )
            return cursor.rowcount == 1

        return self._run("record a delivery", body, write=True)

    def set_config_state(self, configured: bool) -> int:
        """Move rows between ``pending`` and ``pending_config``; return how many moved."""
        old, new = ("pending_config", "pending") if configured else ("pending", "pending_config")

        def body(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE outbox SET state = ? WHERE state = ?", (new, old)).rowcount

        return self._run("update the outbox", body, write=True)

    def next_due_at(self) -> float | None:
        def body(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT MIN(CASE state WHEN 'pending' THEN next_attempt_at"
                " ELSE claim_expires_at END) FROM outbox WHERE state IN ('pending', 'delivering')"
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return self._run("read the outbox", body, write=False)

    def backlog(self) -> dict[str, int]:
        """How many outbox rows are in each delivery state (all states present)."""

        def body(conn: sqlite3.Connection) -> dict[str, int]:
            counts = dict.fromkeys(DELIVERY_STATES, 0)
            for state, count in conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
                counts[state] = count
            return counts

        return self._run("read the outbox", body, write=False)


def _insert_call(conn: sqlite3.Connection, start: CallStart, now: float) -> None:
    exists = conn.execute("SELECT 1 FROM calls WHERE session_id = ?", (start.session_id,))
    if exists.fetchone() is not None:
        raise ValueError(f"call {start.session_id} was already started")
    conn.execute(
        "INSERT INTO calls (session_id, template_id, question_count, metadata, status,"
        " started_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            start.session_id,
            start.template_id,
            start.question_count,
            json.dumps(strip_phone_numbers(start.metadata), ensure_ascii=False),
            IN_PROGRESS,
            now,
        ),
    )


def _call_status(conn: sqlite3.Connection, session_id: str) -> str:
    row = conn.execute("SELECT status FROM calls WHERE session_id = ?", (session_id,)).fetchone()
    if row is None:
        raise ValueError(f"call {session_id} was never started")
    return str(row[0])


def _upsert_answer(conn: sqlite3.Connection, answer: AnswerRecord, now: float) -> None:
    _call_status(conn, answer.session_id)
    # A question asked again (a repeat, a correction) keeps only its latest answer.
    conn.execute(
        "INSERT INTO answers (session_id, question_id, question_order, response, confidence,"
        " response_time_seconds, status, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (session_id, question_id) DO UPDATE SET"
        " question_order = excluded.question_order, response = excluded.response,"
        " confidence = excluded.confidence,"
        " response_time_seconds = excluded.response_time_seconds,"
        " status = excluded.status, recorded_at = excluded.recorded_at",
        (
            answer.session_id,
            answer.question_id,
            answer.question_order,
            answer.response,
            answer.confidence,
            answer.response_time_seconds,
            answer.status,
            now,
        ),
    )


def _finish(conn: sqlite3.Connection, finish: CallFinish, now: float) -> bool:
    if finish.status not in FINAL_STATUSES:
        raise ValueError(f"unknown call status {finish.status!r}; one of {FINAL_STATUSES}")
    if _call_status(conn, finish.session_id) != IN_PROGRESS:
        return False
    duration = finish.call_duration_seconds
    conn.execute(
        "UPDATE calls SET status = ?, finished_at = ?,"
        " call_duration_seconds = COALESCE(?, MAX(0, ? - started_at)) WHERE session_id = ?",
        (finish.status, now, duration, now, finish.session_id),
    )
    conn.execute(
        "INSERT INTO outbox (session_id, idempotency_key, state, created_at, next_attempt_at)"
        " VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (session_id) DO NOTHING",
        (finish.session_id, idempotency_key(finish.session_id), now, now),
    )
    return True


def _read_call(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    call = conn.execute("SELECT * FROM calls WHERE session_id = ?", (session_id,)).fetchone()
    if call is None:
        return None
    answers = conn.execute(
        "SELECT question_id, question_order, response, confidence, response_time_seconds,"
        " status, recorded_at FROM answers WHERE session_id = ? ORDER BY question_order,"
        " recorded_at",
        (session_id,),
    ).fetchall()
    outbox = conn.execute(
        "SELECT state, attempts, last_status, last_error, next_attempt_at, settled_at"
        " FROM outbox WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    result = dict(call)
    result["metadata"] = json.loads(call["metadata"])
    result["answers"] = [dict(row) for row in answers]
    result["delivery"] = dict(outbox) if outbox is not None else None
    return result
