"""The service's hand-over and billing post against the faithful front end (receiver.py):
what the route stores, each 400 of the route kept as final with the front end's own text,
the pre-checks that send nothing, a duplicate resubmission, retries, and billing once."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from quart_trio import QuartTrio

from hana_voice.results import OutboxWorker, ResultStore, calls_blueprint
from hana_voice.results.billing import deliveries_for
from hana_voice.results.outbox import RetryPolicy
from hana_voice.settings import Settings
from tests.frontend.conftest import (
    CALL_SESSION_ID,
    CAMPAIGN_ID,
    DRAFT_TEMPLATE_ID,
    HOSPITAL_ID,
    JWT_SECRET,
    PATIENT_ID,
)
from tests.frontend.database import SEEDED_TEMPLATE_ID
from tests.frontend.receiver import FrontEnd

VOICE_SECRET = "v" * 40
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, request_timeout=2.0, poll_interval=0.2)

#: The seeded template's answers as the call session records them (its own words).
ANSWERS = (("q1", 1, "نعم", "answered"), ("q2", 2, "4", "answered"), ("q3", 3, "", "unanswered"))


def context(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "patient_id": PATIENT_ID,
        "hospital_id": HOSPITAL_ID,
        "campaign_id": CAMPAIGN_ID,
        "call_session_id": CALL_SESSION_ID,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def metadata_of(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """What the call session stores: the front end's ids, and the whole context."""
    keys = ("patient_id", "hospital_id", "campaign_id", "call_session_id")
    return {**{k: ctx.get(k) for k in keys}, "call_context": dict(ctx), "channel": "browser"}


async def finished_call(
    store: ResultStore,
    ctx: Mapping[str, Any] | None = None,
    *,
    template_id: str = SEEDED_TEMPLATE_ID,
    question_count: int = 3,
    answers: tuple[tuple[str, int, str, str], ...] = ANSWERS,
    duration: float = 84.2,
    status: str = "completed",
    billing: bool = True,
) -> str:
    session = str(uuid.uuid4())
    metadata = metadata_of(context() if ctx is None else ctx)
    await store.start_call(session, template_id, question_count, metadata)
    for question_id, order, response, answer_status in answers:
        await store.record_answer(session, question_id, order, response, 0.9, 1.5, answer_status)
    await store.finish_call(session, status, duration, deliveries=deliveries_for(metadata, billing))
    return session


@asynccontextmanager
async def service(
    tmp_path: Path, front_end: FrontEnd
) -> AsyncIterator[tuple[ResultStore, Settings]]:
    settings = Settings(
        data_dir=tmp_path,
        nextjs_api_url=front_end.url,
        jwt_secret=JWT_SECRET,
        voice_service_secret=VOICE_SECRET,
    )
    async with ResultStore.open(tmp_path / "results.sqlite3") as store:
        yield store, settings


async def deliver(store: ResultStore, settings: Settings, passes: int = 1) -> None:
    worker = OutboxWorker(store, settings, policy=FAST)
    for _ in range(passes):
        await worker.run_once()
        await trio.sleep(FAST.max_delay)


async def shown(store: ResultStore, session: str) -> dict[str, Any]:
    """GET /calls/<session> as an operator sees it."""
    app = QuartTrio(__name__)
    app.register_blueprint(
        calls_blueprint(lambda: store, Settings(voice_service_secret=VOICE_SECRET))
    )
    response = await app.test_client().get(
        f"/calls/{session}", headers={"Authorization": f"Bearer {VOICE_SECRET}"}
    )
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


async def test_a_call_is_stored_by_the_route_and_billed_once(
    tmp_path: Path, front_end: FrontEnd
) -> None:
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(store)
            await deliver(store, settings, passes=3)
            call = await shown(store, session)
    assert {k: v["state"] for k, v in call["deliveries"].items()} == {
        "results": "delivered",
        "call_status": "delivered",
    }
    [row] = front_end.stored_responses()
    assert row["template_id"] == SEEDED_TEMPLATE_ID
    assert (row["patient_id"], row["hospital_id"], row["campaign_id"]) == (
        PATIENT_ID,
        HOSPITAL_ID,
        CAMPAIGN_ID,
    )
    assert row["call_session_id"] == session
    assert row["response_time_seconds"] == 85
    assert row["completion_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert [(a["question_id"], a["response"]) for a in row["answers_json"]] == [
        ("q1", "نعم"),
        ("q2", "4"),
    ]
    assert row["metadata_json"]["outcome"] == "completed"
    assert len(front_end.submissions) == 1
    [billing] = front_end.status_posts
    assert billing.body == {
        "call_session_id": CALL_SESSION_ID,
        "status": "completed",
        "duration": 85,
    }
    assert front_end.charges == [CALL_SESSION_ID]
    assert front_end.call_session(CALL_SESSION_ID) == {
        "status": "completed",
        "duration": 85,
        "billed": True,
    }


async def test_a_call_that_dropped_is_billed_as_answered(
    tmp_path: Path, front_end: FrontEnd
) -> None:
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            await finished_call(store, status="incomplete", duration=12.0, answers=ANSWERS[:1])
            await deliver(store, settings)
    [billing] = front_end.status_posts
    assert (billing.body["status"], billing.body["duration"]) == ("answered", 12)
    assert front_end.charges == [CALL_SESSION_ID]
    assert front_end.stored_responses()[0]["completion_rate"] == pytest.approx(1 / 3, abs=1e-3)


async def test_with_billing_off_or_no_call_session_nothing_is_posted_for_billing(
    tmp_path: Path, front_end: FrontEnd
) -> None:
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            off = await finished_call(store, billing=False)
            none = await finished_call(store, context(call_session_id=None))
            await deliver(store, settings)
            calls = [await shown(store, session) for session in (off, none)]
    assert [sorted(call["deliveries"]) for call in calls] == [["results"], ["results"]]
    assert front_end.status_posts == []
    assert len(front_end.stored_responses()) == 2


# --------------------------------------------------------------------------- the route's 400s

ROUTE_REFUSALS = [
    pytest.param(
        {"ctx": context(hospital_id=str(uuid.uuid4()))},
        "HTTP 400: Invalid hospital_id provided",
        id="unknown hospital",
    ),
    pytest.param(
        {"template_id": str(uuid.uuid4())},
        "HTTP 400: Template not found or not published",
        id="unknown template",
    ),
    pytest.param(
        {"template_id": DRAFT_TEMPLATE_ID, "question_count": 1, "answers": ()},
        "HTTP 400: Template not found or not published",
        id="unpublished template",
    ),
    pytest.param(
        {"question_count": 4},
        "HTTP 400: Question count mismatch: expected 3, got 4",
        id="count mismatch",
    ),
    pytest.param(
        {"answers": (("q1", 1, "نعم", "answered"), ("medication", 2, "yes", "answered"))},
        "HTTP 400: Unknown question ID: medication",
        id="unknown question",
    ),
]


@pytest.mark.parametrize(("call", "error"), ROUTE_REFUSALS)
async def test_a_400_of_the_route_is_final_with_the_front_ends_text(
    tmp_path: Path,
    front_end: FrontEnd,
    caplog: pytest.LogCaptureFixture,
    call: dict[str, Any],
    error: str,
) -> None:
    caplog.set_level(logging.INFO, "hana_voice.results")
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(store, billing=False, **call)
            await deliver(store, settings, passes=3)
            shown_call = await shown(store, session)
    delivery = shown_call["delivery"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("failed", 1, 400)
    assert delivery["last_error"] == error
    assert len(front_end.submissions) == 1  # final: never sent again
    assert front_end.stored_responses() == []
    assert any(error in record.getMessage() for record in caplog.records)
    # The log line carries ids and the route's text, never the answers or the patient.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "نعم" not in logged
    assert PATIENT_ID not in logged


PRECHECKS = [
    pytest.param(context(hospital_id=None), "no hospital_id", id="no hospital"),
    pytest.param(context(patient_id=None), "no patient_id", id="no patient"),
    pytest.param(context(patient_id="MRN-1234"), "patient_id in the call's", id="patient id"),
    pytest.param(context(hospital_id="riyadh"), "hospital_id in the call's", id="hospital id"),
    pytest.param(context(campaign_id="spring"), "campaign_id in the call's", id="campaign id"),
]


@pytest.mark.parametrize(("ctx", "reason"), PRECHECKS)
async def test_what_the_route_would_refuse_is_failed_at_once_unsent(
    tmp_path: Path, front_end: FrontEnd, ctx: dict[str, Any], reason: str
) -> None:
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(store, ctx, billing=False)
            await deliver(store, settings, passes=2)
            delivery = (await shown(store, session))["delivery"]
    assert (delivery["state"], delivery["last_status"]) == ("failed", None)
    assert delivery["last_error"].startswith("not sent: ")
    assert reason in delivery["last_error"]
    assert "MRN-1234" not in delivery["last_error"]
    assert front_end.submissions == []


async def test_a_local_questionnaire_is_not_sent_to_the_front_end(
    tmp_path: Path, front_end: FrontEnd
) -> None:
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(
                store, template_id="post_discharge_followup", question_count=7, billing=False
            )
            await deliver(store, settings)
            delivery = (await shown(store, session))["delivery"]
    assert delivery["state"] == "failed"
    assert "'post_discharge_followup' is not a front-end template id" in delivery["last_error"]
    assert front_end.submissions == []


# --------------------------------------------------------------------------- resubmission, retries


async def test_a_duplicate_resubmission_is_taken_as_delivered_and_stored_once(
    tmp_path: Path, front_end: FrontEnd
) -> None:
    """The process died between the front end's 200 and the delivered commit: the row is
    sent again, the route answers 200 with response_id null, one row stays stored."""
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(store, billing=False)
            await deliver(store, settings)
            with sqlite3.connect(tmp_path / "results.sqlite3") as db:
                db.execute(
                    "UPDATE outbox SET state = 'pending', settled_at = NULL WHERE session_id = ?",
                    (session,),
                )
            await deliver(store, settings)
            delivery = (await shown(store, session))["delivery"]
    first, again = front_end.submissions
    assert first.body == again.body
    assert first.reply["response_id"] is not None
    assert (again.status, again.reply["response_id"]) == (200, None)
    assert delivery["state"] == "delivered"
    assert len(front_end.stored_responses()) == 1


async def test_an_outage_is_retried_and_then_stored(tmp_path: Path, front_end: FrontEnd) -> None:
    front_end.outage = [503, 429]
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(store, billing=False)
            await deliver(store, settings)
            pending = (await shown(store, session))["delivery"]
            await deliver(store, settings, passes=4)
            delivered = (await shown(store, session))["delivery"]
    assert (pending["state"], pending["last_error"]) == (
        "pending",
        "HTTP 503: Service temporarily unavailable",
    )
    assert (delivered["state"], delivered["attempts"]) == ("delivered", 3)
    assert [a.status for a in front_end.submissions] == [503, 429, 200]
    assert len(front_end.stored_responses()) == 1


async def test_billing_for_an_unknown_call_session_is_final_with_its_404(
    tmp_path: Path, front_end: FrontEnd
) -> None:
    with trio.fail_after(20):
        async with service(tmp_path, front_end) as (store, settings):
            session = await finished_call(store, context(call_session_id=str(uuid.uuid4())))
            await deliver(store, settings, passes=3)
            billing = (await shown(store, session))["deliveries"]["call_status"]
    assert (billing["state"], billing["last_status"]) == ("failed", 404)
    assert billing["last_error"] == "HTTP 404: Call session not found"
    assert len(front_end.status_posts) == 1
    assert front_end.charges == []


def test_the_front_ends_row_types_hold_what_the_service_sends(front_end_db: str) -> None:
    """The integer column takes the whole seconds the service sends (a sanity check of the
    receiver's casts against the contract's schema)."""
    with psycopg.connect(front_end_db) as conn:
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name ="
            " 'template_responses' AND column_name = 'response_time_seconds'"
        ).fetchone()
    assert kind == ("integer",)
