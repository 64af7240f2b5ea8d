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

A call is ``in_progress`` until it ends, then has one of ``tables.FINAL_STATUSES``.
Tables and statuses: tables.py and docs/results.md.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from hana_voice.errors import StoreError
from hana_voice.results.migrations import SCHEMA_VERSION, SQLITE_MIGRATIONS, too_new
from hana_voice.results.tables import (
    DELIVERY_STATES,
    IN_PROGRESS,
    ORPHANS_WHERE,
    SETTLE_SQL,
    AnswerRecord,
    CallStart,
    CallWrites,
    Write,
    finish,
    insert_call,
    read_call,
    recovered_finish,
    settle_params,
    upsert_answer,
)

T = TypeVar("T")

_LOCKED_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


@dataclass(frozen=True)
class Claim:
    """An outbox row a worker holds for one delivery attempt; ``call`` is get_call's dict."""

    session_id: str
    idempotency_key: str
    attempts: int
    first_attempt_at: float
    call: dict[str, Any]
    kind: str = "results"


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


class ResultDatabase(CallWrites):
    """The synchronous core: calls, answers and the outbox in one SQLite file."""

    backend = "sqlite"
    #: One connection behind a lock: more threads would only queue on it.
    max_size = 1

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
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot prepare the results database: {_describe(exc)}") from None
        except StoreError:
            conn.close()
            raise
        if mode != "wal":
            conn.close()
            raise StoreError(f"the results database cannot use WAL mode (got {mode!r})")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring the schema to SCHEMA_VERSION in one exclusive transaction.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock before the version is read, so two
        processes opening one file together apply each migration once.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if found > SCHEMA_VERSION:
                raise StoreError(too_new(found, str(self.path)))
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in SQLITE_MIGRATIONS[version - 1]:
                    conn.execute(statement)
            if found != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            self._rollback_on(conn)
            raise

    @staticmethod
    def _rollback_on(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def schema_version(self) -> int:
        return self._run(
            "read the schema version",
            lambda conn: int(conn.execute("PRAGMA user_version").fetchone()[0]),
            write=False,
        )

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
        # SQLite may have rolled back already (it does so itself on SQLITE_FULL).
        self._rollback_on(self._conn)

    # --- calls and answers --------------------------------------------------------------

    def apply(self, writes: Sequence[Write], now: float) -> list[str]:
        """Write ``writes`` in one transaction; return the session ids queued for hand-over."""

        def body(conn: sqlite3.Connection) -> list[str]:
            queued: list[str] = []
            for write in writes:
                if isinstance(write, CallStart):
                    insert_call(conn, write, now)
                elif isinstance(write, AnswerRecord):
                    upsert_answer(conn, write, now)
                elif finish(conn, write, now):
                    queued.append(write.session_id)
            return queued

        return self._run("write call results", body, write=True)

    def recover_interrupted(
        self,
        now: float,
        *,
        replica_id: str = "",
        alive_since: float | None = None,
        restarted: bool = False,
    ) -> list[str]:
        """Mark calls left in progress by a dead process incomplete and queue them.

        ``alive_since`` None: every call in progress (one process per file, at its start).
        Otherwise only the calls of replicas silent since then, and ``replica_id``'s own only
        when it has just ``restarted``.
        """

        def body(conn: sqlite3.Connection) -> list[str]:
            if alive_since is None:
                rows = conn.execute(
                    "SELECT session_id, metadata FROM calls WHERE status = ?", (IN_PROGRESS,)
                )
            else:
                rows = conn.execute(
                    f"SELECT session_id, metadata FROM calls WHERE {ORPHANS_WHERE}",
                    (replica_id, restarted, replica_id, alive_since),
                )
            found = [(str(row[0]), row[1]) for row in rows]
            queued = []
            for session_id, metadata in found:
                if finish(conn, recovered_finish(session_id, metadata), now):
                    queued.append(session_id)
            return queued

        return self._run("recover interrupted calls", body, write=True)

    def heartbeat(self, replica_id: str, now: float, forget_before: float) -> None:
        """Record that ``replica_id`` is alive; forget replicas silent since ``forget_before``."""

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO replicas (replica_id, heartbeat_at) VALUES (?, ?)"
                " ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (replica_id, now),
            )
            conn.execute("DELETE FROM replicas WHERE heartbeat_at < ?", (forget_before,))

        self._run("record a heartbeat", body, write=True)

    def get_call(self, session_id: str) -> dict[str, Any] | None:
        return self._run("read a call", lambda conn: read_call(conn, session_id), write=False)

    # --- the outbox ---------------------------------------------------------------------

    def claim_delivery(
        self, worker_id: str, now: float, lease_seconds: float, due_by: float | None = None
    ) -> Claim | None:
        """Take the next row due by ``due_by`` (default ``now``), or one whose holder's lease
        ran out; None when there is none.

        One UPDATE inside a write transaction: two connections cannot both take a row.
        """
        due = now if due_by is None else due_by

        def body(conn: sqlite3.Connection) -> Claim | None:
            row = conn.execute(
                "UPDATE outbox SET state = 'delivering', claimed_by = ?, claim_expires_at = ?,"
                " attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?)"
                " WHERE rowid = (SELECT rowid FROM outbox"
                "   WHERE (state = 'pending' AND next_attempt_at <= ?)"
                "      OR (state = 'delivering' AND claim_expires_at <= ?)"
                "   ORDER BY next_attempt_at LIMIT 1)"
                " RETURNING session_id, idempotency_key, attempts, first_attempt_at, kind",
                (worker_id, now + lease_seconds, now, due, now),
            ).fetchone()
            if row is None:
                return None
            call = read_call(conn, row[0])
            if call is None:
                raise AssertionError("an outbox row always has its call (foreign key)")
            return Claim(row[0], row[1], row[2], row[3], call, row[4])

        return self._run("claim a delivery", body, write=True)

    def settle(
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
        """Record a delivery attempt's outcome; False if the claim was lost meanwhile.

        ``state="failed"`` with ``status_code=None`` fails a claimed row at once, without an
        HTTP attempt (a pre-check); ``error`` is kept up to MAX_ERROR_CHARS characters.
        """
        params = settle_params(
            claim.session_id, claim.kind, worker_id, now, state, status_code, error, next_attempt_at
        )

        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute(SETTLE_SQL, params).rowcount == 1

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
