"""The body the front end's route accepts, the pre-checks of what it would refuse, its error
text, and the billing status mapping. Pure functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hana_voice.errors import Undeliverable
from hana_voice.questionnaire.template import Option, Question
from hana_voice.results.billing import (
    BILLING_STATUS,
    billing_status,
    call_session_id,
    call_status_body,
    checked_call_status_body,
    deliveries_for,
)
from hana_voice.results.handover import (
    build_payload,
    refusal,
    reply_error,
    response_for,
    submit_body,
    whole_seconds,
)

TEMPLATE = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SESSION = "5e7b2c1a-0000-4000-8000-000000000001"
HOSPITAL = "11111111-2222-3333-4444-555555555555"
PATIENT = "99999999-8888-7777-6666-555555555555"
CAMPAIGN = "cccccccc-0000-0000-0000-000000000001"
CALL_SESSION = "dddddddd-0000-0000-0000-000000000001"


def answer(qid: str, order: int, response: str, status: str = "answered") -> dict[str, Any]:
    return {
        "question_id": qid,
        "question_order": order,
        "response": response,
        "confidence": 0.9,
        "response_time_seconds": 1.5,
        "status": status,
    }


def stored_call(**changes: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "session_id": SESSION.replace("-", ""),  # as sessions were named before: hex
        "template_id": TEMPLATE.upper(),
        "question_count": 3,
        "status": "completed",
        "outcome": None,
        "outcome_detail": None,
        "call_duration_seconds": 84.2,
        "metadata": {
            "patient_id": PATIENT,
            "hospital_id": HOSPITAL,
            "campaign_id": CAMPAIGN,
            "call_context": {"provider": "maqsam", "call_session_id": CALL_SESSION},
        },
        "answers": [
            answer("q3", 3, "لا"),
            answer("q2", 2, "", "unanswered"),
            answer("q1", 1, "نعم"),
        ],
    }
    call.update(changes)
    return call


def test_the_body_has_what_the_route_checks() -> None:
    body = submit_body(stored_call(), "k")
    assert body["template_id"] == TEMPLATE
    assert body["question_count"] == 3
    assert [(a["question_id"], a["response"]) for a in body["answers"]] == [
        ("q1", "نعم"),
        ("q3", "لا"),
    ]
    assert all(isinstance(a["confidence"], float) for a in body["answers"])
    metadata = body["metadata"]
    assert metadata["session_id"] == SESSION
    assert metadata["call_duration_seconds"] == 85
    assert (metadata["patient_id"], metadata["hospital_id"]) == (PATIENT, HOSPITAL)
    assert metadata["campaign_id"] == CAMPAIGN
    assert metadata["outcome"] == "completed"
    json.dumps(body, allow_nan=False)


def test_skipped_and_empty_answers_are_left_out_and_the_outcome_is_carried() -> None:
    call = stored_call(
        outcome="partial",
        outcome_detail={"answered": 1},
        answers=[answer("q1", 1, "نعم"), answer("q2", 2, "4", "skipped"), answer("q3", 3, " ")],
    )
    body = submit_body(call, "k")
    assert [a["question_id"] for a in body["answers"]] == ["q1"]
    assert body["metadata"]["outcome"] == "partial"
    assert body["metadata"]["outcome_detail"] == {"answered": 1}


def test_a_confidence_that_is_not_a_number_is_sent_as_zero() -> None:
    broken = answer("q1", 1, "نعم")
    broken["confidence"] = float("nan")
    missing = answer("q2", 2, "3")
    missing["confidence"] = None
    body = submit_body(stored_call(answers=[broken, missing]), "k")
    assert [a["confidence"] for a in body["answers"]] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"question_count": 0}, "question_count"),
        ({"hospital_id": None}, "no hospital_id"),
        ({"hospital_id": "hospital-1"}, "hospital_id in the call's context is not a uuid"),
        ({"template_id": "post_discharge_followup"}, "'post_discharge_followup' is not a"),
        ({"patient_id": None}, "no patient_id"),
        ({"patient_id": ""}, "no patient_id"),
        ({"patient_id": "patient-1"}, "patient_id in the call's context is not a uuid"),
        ({"campaign_id": "spring"}, "campaign_id in the call's context is not a uuid"),
        ({"session_id": "s1"}, "session_id is not a uuid"),
    ],
)
def test_what_the_route_would_refuse_is_named_before_sending(
    change: dict[str, Any], reason: str
) -> None:
    call = stored_call()
    for key, value in change.items():
        if key in ("patient_id", "hospital_id", "campaign_id"):
            call["metadata"][key] = value
        else:
            call[key] = value
    with pytest.raises(Undeliverable, match=reason):
        submit_body(call, "k")


def test_refusals_never_carry_the_ids_of_patients() -> None:
    call = stored_call()
    call["metadata"]["patient_id"] = "MRN-123456"
    with pytest.raises(Undeliverable) as refused:
        submit_body(call, "k")
    assert "123456" not in str(refused.value)


def test_no_campaign_is_fine_and_an_empty_answer_list_is_sent() -> None:
    call = stored_call(answers=[])
    call["metadata"]["campaign_id"] = None
    body = submit_body(call, "k")
    assert body["answers"] == []
    assert body["metadata"]["campaign_id"] is None


def test_refusal_checks_order_and_responses_of_a_body_built_elsewhere() -> None:
    body = build_payload(stored_call(), "k")
    body["answers"].reverse()
    assert refusal(body) == "answers are not sorted by question_order"
    body["answers"].reverse()
    body["answers"][0]["response"] = ""
    assert refusal(body) == "an answer has an empty response"


@pytest.mark.parametrize(
    ("seconds", "whole"),
    [(84.2, 85), (84.0, 84), (0.3, 1), (0, 0), (None, 0), (-3, 0), (float("inf"), 0), (12, 12)],
)
def test_whole_seconds_round_up(seconds: Any, whole: int) -> None:
    assert whole_seconds(seconds) == whole


def test_responses_in_the_templates_own_words() -> None:
    yes_no = Question(
        "q1",
        1,
        "هل؟",
        "yes_no",
        replies={"yes": "نعم", "no": "لا", "uncertain": "غير متأكد"},
    )
    assert [response_for(yes_no, v) for v in ("yes", "no", "uncertain")] == [
        "نعم",
        "لا",
        "غير متأكد",
    ]
    choice = Question(
        "q2",
        2,
        "أي؟",
        "multiple_choice",
        options=(Option("o1", "ممتازة"), Option("o2", "سيئة")),
        replies={"o1": "ممتازة", "o2": "سيئة"},
    )
    assert response_for(choice, "o2") == "سيئة"
    rating = Question("q3", 3, "كم؟", "rating", minimum=1, maximum=5)
    assert response_for(rating, 4) == "4"
    assert response_for(Question("q4", 4, "صف", "open_text"), "تعبت قليلا") == "تعبت قليلا"
    assert response_for(rating, None) == ""


def test_local_questionnaires_keep_their_values() -> None:
    local = Question("medication_adherence", 1, "هل؟", "yes_no")
    assert response_for(local, "yes") == "yes"
    assert response_for(None, 7) == "7"


@pytest.mark.parametrize(
    ("status", "content", "content_type", "text"),
    [
        (
            400,
            b'{"error": "Invalid hospital_id provided"}',
            "application/json",
            "HTTP 400: Invalid hospital_id provided",
        ),
        (
            400,
            b'{"success": false, "error": {"message": "Unknown question ID: q9"}}',
            None,
            "HTTP 400: Unknown question ID: q9",
        ),
        (
            500,
            b'{"error": "Failed to save\\ntemplate response"}',
            "application/json",
            "HTTP 500: Failed to save template response",
        ),
        (502, b"Bad gateway", "text/plain", "HTTP 502: Bad gateway"),
        (404, b"<!DOCTYPE html><html>Not found</html>", "text/html", "HTTP 404"),
        (503, b"", None, "HTTP 503"),
        (400, b"{not json", "application/json", "HTTP 400"),
    ],
)
def test_the_front_ends_error_text_is_kept(
    status: int, content: bytes, content_type: str | None, text: str
) -> None:
    assert reply_error(status, content, content_type) == text


def test_a_long_error_text_is_cut() -> None:
    text = reply_error(400, json.dumps({"error": "x" * 2000}).encode(), "application/json")
    assert len(text) < 320
    assert text.endswith("…")


# --------------------------------------------------------------------------- billing


def test_every_documented_outcome_has_a_billing_status() -> None:
    outcomes = [
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
    ]
    statuses = ["completed", "escalated", "stopped", "consent_refused", "incomplete", "error"]
    assert set(outcomes + statuses) <= set(BILLING_STATUS)
    assert billing_status("completed") == "completed"
    assert billing_status("callback_requested") == "answered"
    assert billing_status("no_response") == "no-answer"
    assert billing_status("failed") == billing_status("error") == "failed"
    assert billing_status("a_future_outcome") == "answered"


def test_call_status_body_from_the_outcome_else_the_status() -> None:
    assert call_status_body(stored_call()) == {
        "call_session_id": CALL_SESSION,
        "status": "completed",
        "duration": 85,
    }
    body = checked_call_status_body(stored_call(outcome="no_response", call_duration_seconds=9.0))
    assert (body["status"], body["duration"]) == ("no-answer", 9)
    assert call_status_body(stored_call(status="incomplete"))["status"] == "answered"


def test_call_session_id_is_found_in_the_context_or_its_custom_fields() -> None:
    assert call_session_id({"call_session_id": CALL_SESSION}) == CALL_SESSION
    nested = {"call_context": {"custom": {"call_session_id": f" {CALL_SESSION} "}}}
    assert call_session_id(nested) == CALL_SESSION
    assert call_session_id({"call_context": {"provider": "twilio"}}) is None


def test_billing_is_queued_only_with_a_call_session_and_when_enabled() -> None:
    with_session = {"call_context": {"call_session_id": CALL_SESSION}}
    assert deliveries_for(with_session, True) == ("results", "call_status")
    assert deliveries_for(with_session, False) == ("results",)
    assert deliveries_for({"call_context": {}}, True) == ("results",)


def test_a_call_session_that_is_not_a_uuid_is_refused_before_sending() -> None:
    call = stored_call()
    call["metadata"]["call_context"]["call_session_id"] = "session-7"
    with pytest.raises(Undeliverable, match="call_session_id"):
        checked_call_status_body(call)
