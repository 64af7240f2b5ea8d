"""Numbered schema migrations of the results database. Data only: the backends apply them.

Migration ``n`` (1-based) takes a database at schema version ``n - 1`` to version ``n``. A
backend applies, in one transaction that it holds exclusively (SQLite: ``BEGIN IMMEDIATE``
and ``PRAGMA user_version``), every migration above the version it finds. A database whose
version is above :data:`SCHEMA_VERSION` was written by a newer release: start-up stops with
:func:`too_new` rather than guess (an older release must not write rows it does not
understand).

Never edit a released migration; append a new one.
"""

from __future__ import annotations

#: SQLite. Statements, one per string (sqlite3 runs one statement per ``execute``).
SQLITE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the 1.0 schema (``IF NOT EXISTS``: 1.0 created these tables without a version).
    (
        """CREATE TABLE IF NOT EXISTS calls (
            session_id TEXT PRIMARY KEY,
            template_id TEXT NOT NULL,
            question_count INTEGER NOT NULL,
            metadata TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            call_duration_seconds REAL
        )""",
        """CREATE TABLE IF NOT EXISTS answers (
            session_id TEXT NOT NULL REFERENCES calls(session_id),
            question_id TEXT NOT NULL,
            question_order INTEGER NOT NULL,
            response TEXT NOT NULL,
            confidence REAL,
            response_time_seconds REAL,
            status TEXT NOT NULL,
            recorded_at REAL NOT NULL,
            PRIMARY KEY (session_id, question_id)
        )""",
        """CREATE TABLE IF NOT EXISTS outbox (
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
        )""",
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at)",
    ),
    # 2: calls that are never handed over, call outcomes, and outbox rows per delivery kind.
    (
        "ALTER TABLE calls ADD COLUMN handover INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE calls ADD COLUMN outcome TEXT",
        "ALTER TABLE calls ADD COLUMN outcome_detail TEXT",
        """CREATE TABLE outbox_v2 (
            session_id TEXT NOT NULL REFERENCES calls(session_id),
            kind TEXT NOT NULL,
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
            settled_at REAL,
            PRIMARY KEY (session_id, kind)
        )""",
        """INSERT INTO outbox_v2 (session_id, kind, idempotency_key, state, attempts,
            created_at, next_attempt_at, first_attempt_at, claimed_by, claim_expires_at,
            last_status, last_error, settled_at)
          SELECT session_id, 'results', idempotency_key, state, attempts, created_at,
            next_attempt_at, first_attempt_at, claimed_by, claim_expires_at, last_status,
            last_error, settled_at FROM outbox""",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_v2 RENAME TO outbox",
        "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
    ),
)

#: The schema version this code writes and understands.
SCHEMA_VERSION = len(SQLITE_MIGRATIONS)


def too_new(found: int, where: str) -> str:
    """The one line that stops start-up on a schema written by a newer release."""
    return (
        f"the results database ({where}) has schema version {found}, newer than this"
        f" release understands ({SCHEMA_VERSION}): upgrade hana-voice or point it at"
        " another database"
    )
