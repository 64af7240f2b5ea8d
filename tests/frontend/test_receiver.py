"""The test receiver is faithful to the front end's routes: each check of the contract's
section 2 in order with its status and message, the column types of template_responses, the
duplicate hash, and section 3's call-status rules."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio

from hana_voice.results.billing import CALL_STATUS_PATH
from hana_voice.results.handover import SUBMIT_PATH, make_token
from tests.frontend.conftest import (
    CALL_SESSION_ID,
    CAMPAIGN_ID,
    DRAFT_TEMPLATE_ID,
    HOSPITAL_ID,
    JWT_SECRET,
    PATIENT_ID,
)
from tests.frontend.database import SEEDED_TEMPLATE_ID
from tests.frontend.receiver import FrontEnd, js_number_text

SESSION_ID = "5e7b2c1a-0000-4000-8000-000000000001"


def good_body() -> dict[str, Any]:
    return {
        "template_id": SEEDED_TEMPLATE_ID,
        "question_count": 3,
        "answers": [
            {"question_id": "q1", "question_order": 1, "response": "نعم", "confidence": 0.9},
            {"question_id": "q2", "question_order": 2, "response": "4", "confidence": 0.8},
        ],
        "metadata": {
            "session_id": SESSION_ID,
            "patient_id": PATIENT_ID,
            "hospital_id": HOSPITAL_ID,
            "campaign_id": CAMPAIGN_ID,
            "call_duration_seconds": 84,
        },
    }


def auth(secret: str = JWT_SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(secret, 5, time.time())}"}


async def post(
    front_end: FrontEnd, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=front_end.url) as client:
            if isinstance(body, bytes):
                return await client.post(path, content=body, headers=headers)
            return await client.post(path, json=body, headers=headers)


def changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    body = copy.deepcopy(good_body())
    change(body)
    return body


async def test_a_good_body_is_stored_with_the_routes_column_types(front_end: FrontEnd) -> None:
    response = await post(front_end, SUBMIT_PATH, good_body(), auth())
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["success"] is True
    assert uuid.UUID(reply["response_id"])
    assert reply["completion_rate"] == pytest.approx(2 / 3, abs=1e-3)
    [row] = front_end.stored_responses()
    assert row["template_id"] == SEEDED_TEMPLATE_ID
    assert (row["patient_id"], row["hospital_id"]) == (PATIENT_ID, HOSPITAL_ID)
    assert (row["campaign_id"], row["call_session_id"]) == (CAMPAIGN_ID, SESSION_ID)
    assert row["response_time_seconds"] == 84
    assert [a["response"] for a in row["answers_json"]] == ["نعم", "4"]


async def test_missing_token_and_bad_token_are_401(front_end: FrontEnd) -> None:
    missing = await post(front_end, SUBMIT_PATH, good_body())
    assert missing.status_code == 401
    wrong = await post(
        front_end, SUBMIT_PATH, good_body(), auth("another-secret-of-32-chars-long!")
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid authentication token"})
    assert front_end.stored_responses() == []


MISSING = "Missing required fields: template_id, question_count, answers"

REFUSALS: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("no template_id", lambda b: b.pop("template_id"), MISSING),
    ("question_count 0", lambda b: b.update(question_count=0), MISSING),
    ("answers not a list", lambda b: b.update(answers={"q1": "نعم"}), MISSING),
    (
        "no hospital_id",
        lambda b: b["metadata"].pop("hospital_id"),
        "hospital_id is required for voice service submissions",
    ),
    (
        "hospital_id not a uuid",
        lambda b: b["metadata"].update(hospital_id="hospital-1"),
        "Invalid hospital_id provided",
    ),
    (
        "unknown hospital",
        lambda b: b["metadata"].update(hospital_id=str(uuid.uuid4())),
        "Invalid hospital_id provided",
    ),
    (
        "template_id not a uuid",
        lambda b: b.update(template_id="post_discharge_followup"),
        "Template not found or not published",
    ),
    (
        "unknown template",
        lambda b: b.update(template_id=str(uuid.uuid4())),
        "Template not found or not published",
    ),
    (
        "unpublished template",
        lambda b: b.update(template_id=DRAFT_TEMPLATE_ID),
        "Template not found or not published",
    ),
    (
        "question count off",
        lambda b: b.update(question_count=2),
        "Question count mismatch: expected 3, got 2",
    ),
    (
        "empty response",
        lambda b: b["answers"][1].update(response=""),
        "Invalid answer structure",
    ),
    (
        "confidence not a number",
        lambda b: b["answers"][0].update(confidence="high"),
        "Invalid answer structure",
    ),
    (
        "order not a number",
        lambda b: b["answers"][0].update(question_order="1"),
        "Invalid answer structure",
    ),
    (
        "no question id",
        lambda b: b["answers"][0].pop("question_id"),
        "Invalid answer structure",
    ),
    (
        "not sorted",
        lambda b: b["answers"].reverse(),
        "Answers must be sorted by question_order",
    ),
    (
        "unknown question",
        lambda b: b["answers"][1].update(question_id="pain_level"),
        "Unknown question ID: pain_level",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [pytest.param(change, message, id=name) for name, change, message in REFUSALS],
)
async def test_each_400_of_the_route(
    front_end: FrontEnd, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    response = await post(front_end, SUBMIT_PATH, changed(change), auth())
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert front_end.stored_responses() == []


async def test_checks_run_in_the_contracts_order(front_end: FrontEnd) -> None:
    """A body wrong in several ways gets the first check's answer."""

    def many(body: dict[str, Any]) -> None:
        body["metadata"]["hospital_id"] = "nope"  # check 3
        body["template_id"] = str(uuid.uuid4())  # check 4
        body["answers"].reverse()  # check 7

    response = await post(front_end, SUBMIT_PATH, changed(many), auth())
    assert response.json() == {"error": "Invalid hospital_id provided"}

    def later(body: dict[str, Any]) -> None:
        body["answers"][0]["question_id"] = "zz"  # check 8
        body["answers"][1]["response"] = ""  # check 6

    response = await post(front_end, SUBMIT_PATH, changed(later), auth())
    assert response.json() == {"error": "Invalid answer structure"}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: b["metadata"].update(call_duration_seconds=84.2), id="fraction"),
        pytest.param(lambda b: b["metadata"].pop("patient_id"), id="no patient"),
        pytest.param(lambda b: b["metadata"].update(patient_id="patient-1"), id="patient"),
        pytest.param(lambda b: b["metadata"].update(campaign_id="campaign-1"), id="campaign"),
        pytest.param(lambda b: b["metadata"].update(session_id="s1"), id="session"),
    ],
)
async def test_what_the_database_refuses_is_a_bare_500(
    front_end: FrontEnd, change: Callable[[dict[str, Any]], object]
) -> None:
    response = await post(front_end, SUBMIT_PATH, changed(change), auth())
    assert (response.status_code, response.json()) == (
        500,
        {"error": "Failed to save template response"},
    )
    assert front_end.stored_responses() == []


async def test_a_whole_float_is_an_integer_as_javascript_reads_it(front_end: FrontEnd) -> None:
    assert js_number_text(84.0) == "84"
    assert js_number_text(84.5) == "84.5"
    body = changed(lambda b: b["metadata"].update(call_duration_seconds=84.0))
    response = await post(front_end, SUBMIT_PATH, body, auth())
    assert response.status_code == 200, response.text


async def test_an_identical_resubmission_is_200_with_no_response_id(front_end: FrontEnd) -> None:
    first = await post(front_end, SUBMIT_PATH, good_body(), auth())
    again = await post(front_end, SUBMIT_PATH, good_body(), auth())
    assert first.json()["response_id"] is not None
    assert again.status_code == 200
    assert again.json()["success"] is True
    assert again.json()["response_id"] is None
    assert len(front_end.stored_responses()) == 1
    # Another answer is another hash: stored.
    other = changed(lambda b: b["answers"][0].update(response="لا"))
    assert (await post(front_end, SUBMIT_PATH, other, auth())).json()["response_id"] is not None
    assert len(front_end.stored_responses()) == 2


async def test_an_empty_answer_list_is_accepted(front_end: FrontEnd) -> None:
    response = await post(front_end, SUBMIT_PATH, changed(lambda b: b.update(answers=[])), auth())
    assert response.status_code == 200
    assert response.json()["completion_rate"] == 0


async def test_an_outage_answers_before_any_check(front_end: FrontEnd) -> None:
    front_end.outage = [503]
    assert (await post(front_end, SUBMIT_PATH, good_body())).status_code == 503
    assert (await post(front_end, SUBMIT_PATH, good_body(), auth())).status_code == 200


# --------------------------------------------------------------------------- section 3


async def test_call_status_of_an_unknown_session_is_404(front_end: FrontEnd) -> None:
    for session in (str(uuid.uuid4()), "not-a-uuid"):
        body = {"call_session_id": session, "status": "completed", "duration": 5}
        response = await post(front_end, CALL_STATUS_PATH, body)
        assert response.status_code == 404
    assert front_end.charges == []


@pytest.mark.parametrize(
    ("status", "duration", "billed"),
    [
        ("completed", 84, True),
        ("completed", 0, True),
        ("answered", 12, True),
        ("answered", 0, False),
        ("no-answer", 0, False),
        ("failed", 3, False),
    ],
)
async def test_call_status_bills_completed_and_answered_calls(
    front_end: FrontEnd, status: str, duration: int, billed: bool
) -> None:
    body = {"call_session_id": CALL_SESSION_ID, "status": status, "duration": duration}
    response = await post(front_end, CALL_STATUS_PATH, body)
    assert response.status_code == 200
    assert (response.json().get("message") == "Call not billable") is not billed
    assert front_end.charges == ([CALL_SESSION_ID] if billed else [])
    assert front_end.call_session(CALL_SESSION_ID) == {
        "status": status,
        "duration": duration,
        "billed": billed,
    }


async def test_call_status_with_a_fractional_duration_fails_like_the_database(
    front_end: FrontEnd,
) -> None:
    body = {"call_session_id": CALL_SESSION_ID, "status": "completed", "duration": 2.5}
    response = await post(front_end, CALL_STATUS_PATH, body)
    assert response.status_code == 500
    assert front_end.charges == []
