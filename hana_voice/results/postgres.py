"""The results database on PostgreSQL, shared by every replica. Blocking.

Same methods and semantics as the SQLite core (database.py); the async
:class:`~hana_voice.results.store.ResultStore` runs each in a worker thread. Tables live in
their own schema (``DATABASE_SCHEMA``, default ``hana_voice``, set as each connection's
``search_path``), so the database can be shared with other applications.

Connections come from a bounded ``psycopg_pool.ConnectionPool`` (``DATABASE_POOL_MIN`` to
``DATABASE_POOL_SIZE``); the store allows as many threads as the pool has connections, so a
thread never waits on the pool behind another thread. Each connection is checked when taken
from the pool (a round trip), so a server restart costs no failed transaction. A connection
waited for longer than ``DATABASE_TIMEOUT`` seconds raises :class:`StoreError` (the server is
down, or every connection is busy); so do lost connections and server errors, with the cause
in words, never the data.

Migrations (migrations.py) run in :meth:`PostgresDatabase.migrate` under a transaction-level
advisory lock keyed on the schema name, so replicas starting together apply each one once;
the applied versions are rows of ``schema_migrations``.

Outbox claims take the next due row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and set a lease
(``claim_expires_at``) in the same statement: replicas claiming at once each get another row,
and a row whose holder died is taken again once its lease has run out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hana_voice.errors import StoreError
from hana_voice.results.database import Claim
from hana_voice.results.handover import strip_phone_numbers
from hana_voice.results.migrations import POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION, too_new
from hana_voice.results.tables import (
    CALL_ANSWERS_SQL,
    CALL_DELIVERIES_SQL,
    DELIVERY_STATES,
    IN_PROGRESS,
    ORPHANS_WHERE,
    QUEUE_DELIVERY_SQL,
    SETTLE_SQL,
    UPSERT_ANSWER_SQL,
    AnswerRecord,
    CallFinish,
    CallStart,
    CallWrites,
    Write,
    answer_params,
    check_finish,
    queue_params,
    recovered_finish,
    settle_params,
    shape_call,
)

T = TypeVar("T")

Conn = psycopg.Connection[dict[str, Any]]


def _pg(query: str) -> str:
    """A query shared with SQLite (tables.py), its ``?`` placeholders made ``%s``."""
    return query.replace("?", "%s")


def _describe(exc: Exception) -> str:
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return "no database connection within DATABASE_TIMEOUT (the server is down or busy)"
    if isinstance(exc, psycopg.OperationalError):
        return "the PostgreSQL server cannot be reached or closed the connection"
    return f"PostgreSQL failed ({type(exc).__name__})"


class PostgresDatabase(CallWrites):
    """The synchronous core on PostgreSQL: calls, answers, outbox and replicas."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "hana_voice",
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 3.0,
    ) -> None:
        self.schema = schema
        self.max_size = max_size
        self.where = f"PostgreSQL schema {schema}"
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(search_path)
            conn.commit()

        self._pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            configure=configure,
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": max(1, round(timeout)),
                "application_name": "hana-voice",
            },
            connection_class=psycopg.Connection[dict[str, Any]],
            # Give a failed connection slot up quickly rather than back off (1 s, 2 s, 4 s
            # ... without bound): the next use opens a new one at once, so the pool is whole
            # again within DATABASE_TIMEOUT of the server's return, however long it was away.
            reconnect_timeout=timeout,
            name="hana-voice-results",
        )
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    # --- transactions -------------------------------------------------------------------

    def _run(self, what: str, body: Callable[[Conn], T]) -> T:
        """Run ``body`` in one transaction on a pooled connection."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                return body(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(f"could not {what}: {_describe(exc)}") from None

    def migrate(self) -> int:
        """Apply missing migrations under the advisory lock; return the version found."""

        def body(conn: Conn) -> int:
            schema = sql.Identifier(self.schema)
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}:migrate",))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            found = int(_one(row)["v"])
            if found > POSTGRES_SCHEMA_VERSION:
                raise _TooNew(too_new(found, self.where, POSTGRES_SCHEMA_VERSION))
            for version in range(found + 1, POSTGRES_SCHEMA_VERSION + 1):
                for statement in POSTGRES_MIGRATIONS[version - 1]:
                    conn.execute(statement.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            return found

        try:
            return self._run("prepare the results schema", body)
        except _TooNew as exc:
            raise StoreError(str(exc)) from None

    def schema_version(self) -> int:
        return int(
            self._run(
                "read the schema version",
                lambda c: _one(c.execute("SELECT MAX(version) AS v FROM schema_migrations"))["v"],
            )
        )

    # --- calls and answers --------------------------------------------------------------

    def apply(self, writes: Sequence[Write], now: float) -> list[str]:
        def body(conn: Conn) -> list[str]:
            queued: list[str] = []
            for write in writes:
                if isinstance(write, CallStart):
                    _insert_call(conn, write, now)
                elif isinstance(write, AnswerRecord):
                    _upsert_answer(conn, write, now)
                elif _finish(conn, write, now):
                    queued.append(write.session_id)
            return queued

        return self._run("write call results", body)

    def recover_interrupted(
        self,
        now: float,
        *,
        replica_id: str = "",
        alive_since: float | None = None,
        restarted: bool = False,
    ) -> list[str]:
        """As ResultDatabase.recover_interrupted; rows another replica is recovering at the
        same moment are skipped (SKIP LOCKED), not waited for."""

        def body(conn: Conn) -> list[str]:
            if alive_since is None:
                rows = conn.execute(
                    "SELECT session_id, metadata FROM calls WHERE status = 'in_progress'"
                    " FOR UPDATE SKIP LOCKED"
                )
            else:
                where = _pg(ORPHANS_WHERE)
                rows = conn.execute(
                    f"SELECT session_id, metadata FROM calls WHERE {where} FOR UPDATE SKIP LOCKED",
                    (replica_id, restarted, replica_id, alive_since),
                )
            queued = []
            for row in rows.fetchall():
                session_id = str(row["session_id"])
                if _finish(conn, recovered_finish(session_id, row["metadata"]), now):
                    queued.append(session_id)
            return queued

        return self._run("recover interrupted calls", body)

    def heartbeat(self, replica_id: str, now: float, forget_before: float) -> None:
        def body(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO replicas (replica_id, heartbeat_at) VALUES (%s, %s)"
                " ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (replica_id, now),
            )
            conn.execute("DELETE FROM replicas WHERE heartbeat_at < %s", (forget_before,))

        self._run("record a heartbeat", body)

    def get_call(self, session_id: str) -> dict[str, Any] | None:
        return self._run("read a call", lambda conn: _read_call(conn, session_id))

    # --- the outbox ---------------------------------------------------------------------

    def claim_delivery(
        self, worker_id: str, now: float, lease_seconds: float, due_by: float | None = None
    ) -> Claim | None:
        """Take the next due row (or one whose lease ran out) for ``lease_seconds``."""
        due = now if due_by is None else due_by

        def body(conn: Conn) -> Claim | None:
            row = conn.execute(
                "WITH next AS (SELECT session_id, kind FROM outbox"
                "   WHERE (state = 'pending' AND next_attempt_at <= %s)"
                "      OR (state = 'delivering' AND claim_expires_at <= %s)"
                "   ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " UPDATE outbox o SET state = 'delivering', claimed_by = %s,"
                "   claim_expires_at = %s, attempts = o.attempts + 1,"
                "   first_attempt_at = COALESCE(o.first_attempt_at, %s)"
                " FROM next WHERE o.session_id = next.session_id AND o.kind = next.kind"
                " RETURNING o.session_id, o.idempotency_key, o.attempts, o.first_attempt_at,"
                "   o.kind",
                (due, now, worker_id, now + lease_seconds, now),
            ).fetchone()
            if row is None:
                return None
            call = _read_call(conn, row["session_id"])
            if call is None:
                raise AssertionError("an outbox row always has its call (foreign key)")
            return Claim(
                row["session_id"],
                row["idempotency_key"],
                row["attempts"],
                row["first_attempt_at"],
                call,
                row["kind"],
            )

        return self._run("claim a delivery", body)

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
        params = settle_params(
            claim.session_id, claim.kind, worker_id, now, state, status_code, error, next_attempt_at
        )

        def body(conn: Conn) -> bool:
            return conn.execute(_pg(SETTLE_SQL), params).rowcount == 1

        return self._run("record a delivery", body)

    def set_config_state(self, configured: bool) -> int:
        old, new = ("pending_config", "pending") if configured else ("pending", "pending_config")
        return self._run(
            "update the outbox",
            lambda conn: (
                conn.execute("UPDATE outbox SET state = %s WHERE state = %s", (new, old)).rowcount
            ),
        )

    def next_due_at(self) -> float | None:
        def body(conn: Conn) -> float | None:
            row = _one(
                conn.execute(
                    "SELECT MIN(CASE state WHEN 'pending' THEN next_attempt_at"
                    " ELSE claim_expires_at END) AS due FROM outbox"
                    " WHERE state IN ('pending', 'delivering')"
                )
            )
            return None if row["due"] is None else float(row["due"])

        return self._run("read the outbox", body)

    def backlog(self) -> dict[str, int]:
        def body(conn: Conn) -> dict[str, int]:
            counts = dict.fromkeys(DELIVERY_STATES, 0)
            for row in conn.execute("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state"):
                counts[row["state"]] = int(row["n"])
            return counts

        return self._run("read the outbox", body)


class _TooNew(Exception):
    """Raised inside the migration transaction so that it rolls back."""


def _one(cursor: psycopg.Cursor[dict[str, Any]]) -> dict[str, Any]:
    row = cursor.fetchone()
    if row is None:
        raise AssertionError("an aggregate always returns a row")
    return row


def _insert_call(conn: Conn, start: CallStart, now: float) -> None:
    inserted = conn.execute(
        "INSERT INTO calls (session_id, template_id, question_count, metadata, status,"
        " started_at, handover, replica_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (session_id) DO NOTHING",
        (
            start.session_id,
            start.template_id,
            start.question_count,
            Jsonb(strip_phone_numbers(start.metadata)),
            IN_PROGRESS,
            now,
            start.handover,
            start.replica_id,
        ),
    )
    if inserted.rowcount != 1:
        raise ValueError(f"call {start.session_id} was already started")


def _upsert_answer(conn: Conn, answer: AnswerRecord, now: float) -> None:
    exists = conn.execute("SELECT 1 FROM calls WHERE session_id = %s", (answer.session_id,))
    if exists.fetchone() is None:
        raise ValueError(f"call {answer.session_id} was never started")
    conn.execute(_pg(UPSERT_ANSWER_SQL), answer_params(answer, now))


def _finish(conn: Conn, finish: CallFinish, now: float) -> bool:
    """As tables.finish: one conditional UPDATE, so two replicas cannot both finish a call."""
    check_finish(finish)
    detail = finish.outcome_detail
    row = conn.execute(
        "UPDATE calls SET status = %s, finished_at = %s,"
        " call_duration_seconds = COALESCE(%s, GREATEST(0, %s - started_at)),"
        " outcome = %s, outcome_detail = %s"
        " WHERE session_id = %s AND status = 'in_progress' RETURNING handover",
        (
            finish.status,
            now,
            finish.call_duration_seconds,
            now,
            finish.outcome,
            None if detail is None else Jsonb(dict(detail)),
            finish.session_id,
        ),
    ).fetchone()
    if row is None:
        exists = conn.execute("SELECT 1 FROM calls WHERE session_id = %s", (finish.session_id,))
        if exists.fetchone() is None:
            raise ValueError(f"call {finish.session_id} was never started")
        return False
    if not row["handover"]:
        return False
    for kind in dict.fromkeys(finish.deliveries):
        conn.execute(_pg(QUEUE_DELIVERY_SQL), queue_params(finish.session_id, kind, now))
    return bool(finish.deliveries)


def _read_call(conn: Conn, session_id: str) -> dict[str, Any] | None:
    call = conn.execute("SELECT * FROM calls WHERE session_id = %s", (session_id,)).fetchone()
    if call is None:
        return None
    answers = conn.execute(_pg(CALL_ANSWERS_SQL), (session_id,)).fetchall()
    outbox = conn.execute(_pg(CALL_DELIVERIES_SQL), (session_id,)).fetchall()
    return shape_call(call, answers, outbox)
