"""The tables of the results database and the row-level SQL on them. No connections.

Schema (docs/results.md explains each column)::

    calls    one row per call: template, question count, metadata (phone numbers
             stripped), status (in_progress, then one of FINAL_STATUSES), times
    answers  one row per (call, question); a question answered again keeps the latest
    outbox   one row per finished call: delivery state (DELIVERY_STATES), attempts,
             next attempt, the claim's holder and lease, the last HTTP status or error

Every function here runs inside a transaction that database.py opened.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hana_voice.results.handover import idempotency_key, strip_phone_numbers

IN_PROGRESS = "in_progress"
FINAL_STATUSES = ("completed", "escalated", "stopped", "consent_refused", "incomplete", "error")
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


def insert_call(conn: sqlite3.Connection, start: CallStart, now: float) -> None:
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


def upsert_answer(conn: sqlite3.Connection, answer: AnswerRecord, now: float) -> None:
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


def finish(conn: sqlite3.Connection, finish: CallFinish, now: float) -> bool:
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


def read_call(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
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
