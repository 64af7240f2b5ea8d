"""The tables of the results database and the row-level SQL on them. No connections.

Schema (migrations.py creates it; docs/results.md explains each column)::

    calls    one row per call: template, question count, metadata (phone numbers
             stripped), status (in_progress, then one of FINAL_STATUSES), times, whether
             it is handed over at all, its outcome (OUTCOMES) and the outcome's detail
    answers  one row per (call, question); a question answered again keeps the latest
    outbox   one row per (finished call, delivery kind): delivery state (DELIVERY_STATES),
             attempts, next attempt, the claim's holder and lease, the last HTTP status or
             error

Every function here runs inside a transaction that database.py opened.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hana_voice.results.handover import idempotency_key, strip_phone_numbers

IN_PROGRESS = "in_progress"
FINAL_STATUSES = ("completed", "escalated", "stopped", "consent_refused", "incomplete", "error")
DELIVERY_STATES = ("pending", "pending_config", "delivering", "delivered", "failed")
#: What ``delivery`` says for a call stored but never handed over (an anonymous call).
NOT_HANDED_OVER = "not_handed_over"
#: Call outcomes as the dialog names them (issue 14). The store accepts any short
#: snake_case name, so a new outcome needs no schema change; these are the known ones.
OUTCOMES = (
    "completed",
    "partial",
    "consent_refused",
    "stopped",
    "do_not_call",
    "callback_requested",
    "wrong_person",
    "escalated",
    "transfer_failed",
    "no_response",
    "failed",
)
#: Longest ``last_error`` kept (the front end's error text, a reason for failing at once).
MAX_ERROR_CHARS = 500

_OUTCOME_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class CallStart:
    session_id: str
    template_id: str
    question_count: int
    metadata: Mapping[str, Any]
    handover: bool = True
    #: The replica running the call (its orphan is recovered when the replica goes silent).
    replica_id: str | None = None


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
    outcome: str | None = None
    outcome_detail: Mapping[str, Any] | None = None
    deliveries: tuple[str, ...] = ("results",)


Write = CallStart | AnswerRecord | CallFinish

#: The metadata key under which a call records, at its start, which deliveries it asked for
#: (results, billing): a call finished by recovery after its process died queues the same.
DELIVERIES_KEY = "deliveries"


def recovered_finish(session_id: str, metadata: Mapping[str, Any] | str | None) -> CallFinish:
    """How a call left in progress by a dead process is finished: ``incomplete``, outcome
    ``failed`` (technical), queued for the deliveries it asked for when it started."""
    data = json.loads(metadata) if isinstance(metadata, str) else metadata
    asked = data.get(DELIVERIES_KEY) if isinstance(data, Mapping) else None
    kinds = tuple(k for k in asked if isinstance(k, str)) if isinstance(asked, list) else ()
    return CallFinish(
        session_id,
        "incomplete",
        None,
        outcome="failed",
        outcome_detail={"reason": "process_lost"},
        deliveries=kinds or ("results",),
    )


#: Queue one delivery of a finished call (PostgreSQL swaps ``?`` for ``%s``).
QUEUE_DELIVERY_SQL = (
    "INSERT INTO outbox (session_id, kind, idempotency_key, state, created_at,"
    " next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?)"
    " ON CONFLICT (session_id, kind) DO NOTHING"
)


def queue_params(session_id: str, kind: str, now: float) -> tuple[Any, ...]:
    return (session_id, kind, outbox_key(session_id, kind), now, now)


def outbox_key(session_id: str, kind: str) -> str:
    """The idempotency key of one delivery; the results hand-over keeps 1.0's key."""
    key = idempotency_key(session_id)
    return key if kind == "results" else f"{key}:{kind}"


def check_finish(finish: CallFinish) -> None:
    """Raise ValueError for a finish that can never be written (misuse, not a fault)."""
    if finish.status not in FINAL_STATUSES:
        raise ValueError(f"unknown call status {finish.status!r}; one of {FINAL_STATUSES}")
    if finish.outcome is not None and not _OUTCOME_NAME.fullmatch(finish.outcome):
        raise ValueError(f"bad call outcome {finish.outcome!r}: a snake_case name, e.g. {OUTCOMES}")
    if finish.outcome_detail is not None:
        if not isinstance(finish.outcome_detail, Mapping):
            raise ValueError("outcome_detail must be a mapping")
        try:
            json.dumps(finish.outcome_detail)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"outcome_detail is not JSON: {exc}") from None


#: Shared by SQLite and PostgreSQL (which swaps ``?`` for ``%s``); params: answer_params.
UPSERT_ANSWER_SQL = (
    "INSERT INTO answers (session_id, question_id, question_order, response, confidence,"
    " response_time_seconds, status, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (session_id, question_id) DO UPDATE SET"
    " question_order = excluded.question_order, response = excluded.response,"
    " confidence = excluded.confidence,"
    " response_time_seconds = excluded.response_time_seconds,"
    " status = excluded.status, recorded_at = excluded.recorded_at"
)


def answer_params(answer: AnswerRecord, now: float) -> tuple[Any, ...]:
    return (
        answer.session_id,
        answer.question_id,
        answer.question_order,
        answer.response,
        answer.confidence,
        answer.response_time_seconds,
        answer.status,
        now,
    )


#: Shared by SQLite and PostgreSQL (which swaps ``?`` for ``%s``); params: settle_params.
SETTLE_SQL = (
    "UPDATE outbox SET state = ?, last_status = ?, last_error = ?,"
    " next_attempt_at = COALESCE(?, next_attempt_at),"
    " settled_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END,"
    " claimed_by = NULL, claim_expires_at = NULL"
    " WHERE session_id = ? AND kind = ? AND state = 'delivering' AND claimed_by = ?"
)


def settle_params(
    session_id: str,
    kind: str,
    worker_id: str,
    now: float,
    state: str,
    status_code: int | None,
    error: str | None,
    next_attempt_at: float | None,
) -> tuple[Any, ...]:
    kept_error = None if error is None else error[:MAX_ERROR_CHARS]
    return (
        state,
        status_code,
        kept_error,
        next_attempt_at,
        state,
        now,
        session_id,
        kind,
        worker_id,
    )


def insert_call(conn: sqlite3.Connection, start: CallStart, now: float) -> None:
    exists = conn.execute("SELECT 1 FROM calls WHERE session_id = ?", (start.session_id,))
    if exists.fetchone() is not None:
        raise ValueError(f"call {start.session_id} was already started")
    conn.execute(
        "INSERT INTO calls (session_id, template_id, question_count, metadata, status,"
        " started_at, handover, replica_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            start.session_id,
            start.template_id,
            start.question_count,
            json.dumps(strip_phone_numbers(start.metadata), ensure_ascii=False),
            IN_PROGRESS,
            now,
            int(start.handover),
            start.replica_id,
        ),
    )


def _call_row(conn: sqlite3.Connection, session_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT status, handover FROM calls WHERE session_id = ?", (session_id,)
    ).fetchone()
    if row is None:
        raise ValueError(f"call {session_id} was never started")
    return row  # type: ignore[no-any-return]  # row_factory is sqlite3.Row


def upsert_answer(conn: sqlite3.Connection, answer: AnswerRecord, now: float) -> None:
    _call_row(conn, answer.session_id)
    # A question asked again (a repeat, a correction) keeps only its latest answer.
    conn.execute(UPSERT_ANSWER_SQL, answer_params(answer, now))


def finish(conn: sqlite3.Connection, finish: CallFinish, now: float) -> bool:
    """Set the final status; queue one outbox row per delivery kind unless not handed over."""
    check_finish(finish)
    row = _call_row(conn, finish.session_id)
    if row["status"] != IN_PROGRESS:
        return False
    detail = finish.outcome_detail
    conn.execute(
        "UPDATE calls SET status = ?, finished_at = ?,"
        " call_duration_seconds = COALESCE(?, MAX(0, ? - started_at)),"
        " outcome = ?, outcome_detail = ? WHERE session_id = ?",
        (
            finish.status,
            now,
            finish.call_duration_seconds,
            now,
            finish.outcome,
            None if detail is None else json.dumps(dict(detail), ensure_ascii=False),
            finish.session_id,
        ),
    )
    if not row["handover"]:
        return False
    for kind in dict.fromkeys(finish.deliveries):
        conn.execute(QUEUE_DELIVERY_SQL, queue_params(finish.session_id, kind, now))
    return bool(finish.deliveries)


#: A call's answers and delivery rows, for read_call (PostgreSQL swaps ``?`` for ``%s``).
CALL_ANSWERS_SQL = (
    "SELECT question_id, question_order, response, confidence, response_time_seconds,"
    " status, recorded_at FROM answers WHERE session_id = ? ORDER BY question_order,"
    " recorded_at"
)
CALL_DELIVERIES_SQL = (
    "SELECT kind, state, attempts, last_status, last_error, next_attempt_at, settled_at"
    " FROM outbox WHERE session_id = ? ORDER BY kind"
)


def shape_call(
    call: Mapping[str, Any], answers: list[dict[str, Any]], outbox: list[dict[str, Any]]
) -> dict[str, Any]:
    """The call dict of ``get_call`` (and of the outbox's payload builders), any backend.

    ``delivery`` is the results hand-over's row (None until the call ends), or
    ``{"state": "not_handed_over"}``; ``deliveries`` has every kind's row by kind.
    """
    result = dict(call)
    result.pop("replica_id", None)
    result["handover"] = bool(call["handover"])
    result["metadata"] = _json(call["metadata"])
    detail = call.get("outcome_detail")
    result["outcome_detail"] = _json(detail) if detail is not None else None
    result["answers"] = answers
    by_kind = {row["kind"]: {k: v for k, v in row.items() if k != "kind"} for row in outbox}
    if not result["handover"]:
        result["delivery"] = {"state": NOT_HANDED_OVER}
    else:
        result["delivery"] = by_kind.get("results")
    result["deliveries"] = by_kind
    return result


#: In-progress calls whose replica is silent (no heartbeat since ``alive_since``). Parameters:
#: (me, restarted, me, alive_since): the asking replica's own calls count only when it has
#: just ``restarted`` (they belong to its previous life).
ORPHANS_WHERE = (
    "status = 'in_progress' AND (replica_id IS NULL OR (replica_id = ? AND ?)"
    " OR (replica_id <> ? AND replica_id NOT IN"
    " (SELECT replica_id FROM replicas WHERE heartbeat_at >= ?)))"
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def read_call(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    call = conn.execute("SELECT * FROM calls WHERE session_id = ?", (session_id,)).fetchone()
    if call is None:
        return None
    answers = conn.execute(CALL_ANSWERS_SQL, (session_id,)).fetchall()
    outbox = conn.execute(CALL_DELIVERIES_SQL, (session_id,)).fetchall()
    return shape_call(dict(call), [dict(row) for row in answers], [dict(row) for row in outbox])


class CallWrites:
    """The one-write shortcuts both backends (SQLite, PostgreSQL) offer over ``apply``."""

    def apply(self, writes: Sequence[Write], now: float) -> list[str]:
        raise NotImplementedError

    def start_call(
        self,
        session_id: str,
        template_id: str,
        question_count: int,
        metadata: Mapping[str, Any],
        now: float,
        handover: bool = True,
    ) -> None:
        self.apply([CallStart(session_id, template_id, question_count, metadata, handover)], now)

    def record_answer(self, answer: AnswerRecord, now: float) -> None:
        self.apply([answer], now)

    def finish_call(
        self,
        session_id: str,
        status: str,
        call_duration_seconds: float | None,
        now: float,
        *,
        outcome: str | None = None,
        outcome_detail: Mapping[str, Any] | None = None,
        deliveries: Sequence[str] = ("results",),
    ) -> bool:
        """Set the final status and queue the deliveries; False if nothing was queued (the
        call had already finished, is not handed over, or ``deliveries`` is empty)."""
        finish = CallFinish(
            session_id, status, call_duration_seconds, outcome, outcome_detail, tuple(deliveries)
        )
        return bool(self.apply([finish], now))
