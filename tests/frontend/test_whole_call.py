"""Whole calls (browser, Maqsam, Twilio-style) on a questionnaire shaped like a front-end
template (uuid id, the template's own words for each answer) end with the row stored by the
faithful route and the billing post received once.

The questionnaire is a loaded one under a template uuid, with ``replies`` set as a template
source fills them from ``expected_responses``; the same template is published in the front
end's ``template_versions`` so that the route validates against it. (Templates read from the
front end's database by the template source are tested with that source.)
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

from hana_voice.questionnaire.template import Question, Questionnaire
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready, no_sessions_left
from tests.conftest import run_server
from tests.frontend.conftest import (
    CALL_SESSION_ID,
    CAMPAIGN_ID,
    HOSPITAL_ID,
    JWT_SECRET,
    PATIENT_ID,
)
from tests.frontend.receiver import FrontEnd
from tests.hardening.support import QUESTIONNAIRE, keypad_call
from tests.telephony.peers import MaqsamPeer, Peer, TwilioPeer, keypad_caller, open_peer
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_QUESTIONNAIRE,
    MAQSAM_AUTH,
    MAQSAM_PATH,
    TELEPHONY_TOKEN,
    telephony_server,
)
from tests.wsclient import connect

TEMPLATE_ID = "7e3a0c52-6a8f-4f55-9a61-2f5b3c9d0e11"
YES_NO_WORDS = {"yes": "نعم", "no": "لا", "uncertain": "غير متأكد"}


def as_template(questionnaire: Questionnaire) -> Questionnaire:
    """The questionnaire as a front-end template converts: its uuid, the template's words."""

    def words(question: Question) -> dict[str, str]:
        if question.type == "yes_no":
            return YES_NO_WORDS
        return {option.id: option.text for option in question.options}

    questions = tuple(dataclasses.replace(q, replies=words(q)) for q in questionnaire.questions)
    return dataclasses.replace(questionnaire, id=TEMPLATE_ID, questions=questions)


def publish(front_end: FrontEnd, template: Questionnaire) -> None:
    with psycopg.connect(front_end.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO template_versions (template_id, name, is_published, questions_json)"
            " VALUES (%s, 'Follow-up', true, %s::jsonb)",
            (template.id, json.dumps(template_row(template), ensure_ascii=False)),
        )


def template_row(questionnaire: Questionnaire) -> list[dict[str, Any]]:
    """The same questions as the front end stores them in ``questions_json``."""
    rows: list[dict[str, Any]] = []
    for q in questionnaire.questions:
        row: dict[str, Any] = {"id": q.id, "text": q.text, "order": q.order, "type": q.type}
        if q.type == "yes_no":
            row["expected_responses"] = list(YES_NO_WORDS.values())
        elif q.type == "rating":
            row["min_rating"], row["max_rating"] = q.minimum, q.maximum
            low, high = q.minimum or 0, q.maximum or 10
            row["expected_responses"] = [str(n) for n in range(low, high + 1)]
        elif q.type == "multiple_choice":
            row["expected_responses"] = [option.text for option in q.options]
        rows.append(row)
    return rows


async def test_a_browser_call_ends_with_the_row_stored_and_billed(
    settings: Settings, front_end: FrontEnd
) -> None:
    loaders, _, _ = fake_loaders()
    settings = live(settings, nextjs_api_url=front_end.url, jwt_secret=JWT_SECRET)
    context = {
        "template_id": TEMPLATE_ID,
        "patient_id": PATIENT_ID,
        "hospital_id": HOSPITAL_ID,
        "campaign_id": CAMPAIGN_ID,
        "call_session_id": CALL_SESSION_ID,
    }
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        questionnaires = server.services.extras["questionnaires"]
        template = as_template(questionnaires[settings.default_questionnaire])
        questionnaires[TEMPLATE_ID] = template
        publish(front_end, template)
        with trio.fail_after(60):
            async with connect(server.ws_url + QUESTIONNAIRE) as client:
                session_id, result = await keypad_call(client, context)
                await client.closed()
            await no_sessions_left(server)
            [submission] = await front_end.wait_for("/api/responses/submit")
            [billing] = await front_end.wait_for("/api/telephony/call-status")
    assert result["outcome"] == "completed"
    assert submission.status == 200, submission.reply
    assert uuid.UUID(session_id)
    [row] = front_end.stored_responses()
    assert (row["template_id"], row["call_session_id"]) == (TEMPLATE_ID, session_id)
    assert (row["patient_id"], row["hospital_id"]) == (PATIENT_ID, HOSPITAL_ID)
    assert [a["response"] for a in row["answers_json"]] == [
        "نعم",
        "لا",
        "3",
        "لا",
        "أفضل",
        "نعم",
        "لا شيء",
    ]
    assert row["completion_rate"] == 1
    assert isinstance(row["response_time_seconds"], int)
    assert (billing.status, billing.body["status"]) == (200, "completed")
    assert billing.body["call_session_id"] == CALL_SESSION_ID
    assert front_end.charges == [CALL_SESSION_ID]


TELEPHONY = [
    pytest.param(MaqsamPeer, MAQSAM_PATH, MAQSAM_AUTH, {"call_id": "mq-frontend"}, id="maqsam"),
    pytest.param(
        TwilioPeer,
        f"/ws/telephony/healthcare?token={TELEPHONY_TOKEN}",
        [],
        {"call_sid": "CA-frontend"},
        id="twilio",
    ),
]


@pytest.mark.parametrize(("peer_type", "path", "headers", "ids"), TELEPHONY)
async def test_a_telephony_call_ends_with_the_row_stored_and_billed(
    settings: Settings,
    tmp_path: Path,
    front_end: FrontEnd,
    peer_type: type[Peer],
    path: str,
    headers: list[tuple[str, str]],
    ids: dict[str, str],
) -> None:
    """The front end's ids travel in the provider's custom fields (Maqsam's context.custom,
    Twilio's <Parameter>s) to the stored row and the billing post."""
    loaders, _, _ = fake_loaders()
    custom = {
        "template_id": TEMPLATE_ID,
        "patient_id": PATIENT_ID,
        "hospital_id": HOSPITAL_ID,
        "campaign_id": CAMPAIGN_ID,
        "call_session_id": CALL_SESSION_ID,
    }
    changes = {"nextjs_api_url": front_end.url, "jwt_secret": JWT_SECRET}
    async with telephony_server(settings, tmp_path, loaders, **changes) as server:
        questionnaires = server.services.extras["questionnaires"]
        template = as_template(questionnaires[KEYPAD_QUESTIONNAIRE])
        questionnaires[TEMPLATE_ID] = template
        publish(front_end, template)
        with trio.fail_after(60):
            async with open_peer(peer_type, server.ws_url + path, headers) as peer:
                await peer.setup(custom, **ids)
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
                await peer.closed.wait()
            [submission] = await front_end.wait_for("/api/responses/submit")
            [billing] = await front_end.wait_for("/api/telephony/call-status")
    assert peer.close_code == 1000
    assert submission.status == 200, submission.reply
    [row] = front_end.stored_responses()
    assert (row["template_id"], row["patient_id"]) == (TEMPLATE_ID, PATIENT_ID)
    assert [(a["question_id"], a["response"]) for a in row["answers_json"]] == [
        ("medication", "نعم"),
        ("chest_pain", "لا"),
        ("pain_level", "1"),
        ("condition", "أفضل"),
    ]
    assert row["metadata_json"]["call_context"]["call_session_id"] == CALL_SESSION_ID
    assert (billing.status, billing.body["status"]) == (200, "completed")
    assert front_end.charges == [CALL_SESSION_ID]
