"""Whole calls on a front-end template, end to end: the template read from the front end's
``template_versions`` (TEMPLATES_DATABASE_URL), a call through the browser (authenticated),
Maqsam or Twilio-style media streams, and at the end the row stored by the faithful results
route (receiver.py) in the template's own words, and the billing post received once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.results.billing import CALL_STATUS_PATH
from hana_voice.results.handover import SUBMIT_PATH
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.calls.helpers import wait_prompt
from tests.conftest import SECRET
from tests.frontend.conftest import (
    CALL_SESSION_ID,
    CAMPAIGN_ID,
    HOSPITAL_ID,
    JWT_SECRET,
    PATIENT_ID,
)
from tests.frontend.database import SEEDED_TEMPLATE_ID
from tests.frontend.receiver import Arrival, FrontEnd
from tests.telephony.peers import MaqsamPeer, Peer, TwilioPeer, keypad_caller, open_peer
from tests.telephony.support import MAQSAM_AUTH, MAQSAM_PATH, TELEPHONY_TOKEN, telephony_server
from tests.wsclient import connect

#: The call's context as the front end would pass it: the template and its own ids.
CONTEXT = {
    "template_id": SEEDED_TEMPLATE_ID,
    "patient_id": PATIENT_ID,
    "hospital_id": HOSPITAL_ID,
    "campaign_id": CAMPAIGN_ID,
    "call_session_id": CALL_SESSION_ID,
}
#: Keys through the seeded template: consent, q1 yes, q2 rating 4, q3 no.
KEYS = {"greeting": "1", "q1": "1", "q2": "4", "q3": "2"}
#: What the route stores: the template's own words, in order.
STORED = [("q1", "نعم"), ("q2", "4"), ("q3", "لا")]


def server_settings(front_end: FrontEnd) -> dict[str, Any]:
    return {
        "templates_database_url": front_end.database_url,
        "templates_timeout": 2.0,
        "nextjs_api_url": front_end.url,
        "jwt_secret": JWT_SECRET,
    }


async def handed_over(front_end: FrontEnd) -> tuple[Arrival, Arrival]:
    [submission] = await front_end.wait_for(SUBMIT_PATH)
    [billing] = await front_end.wait_for(CALL_STATUS_PATH)
    return submission, billing


def check_stored(front_end: FrontEnd, submission: Arrival, billing: Arrival) -> dict[str, Any]:
    assert submission.status == 200, submission.reply
    [row] = front_end.stored_responses()
    assert row["template_id"] == SEEDED_TEMPLATE_ID
    assert (row["patient_id"], row["hospital_id"], row["campaign_id"]) == (
        PATIENT_ID,
        HOSPITAL_ID,
        CAMPAIGN_ID,
    )
    assert [(a["question_id"], a["response"]) for a in row["answers_json"]] == STORED
    assert row["completion_rate"] == 1
    assert isinstance(row["response_time_seconds"], int)
    assert row["metadata_json"]["outcome"] == "completed"
    assert (billing.status, billing.body["status"]) == (200, "completed")
    assert billing.body["call_session_id"] == CALL_SESSION_ID
    assert billing.body["duration"] == row["response_time_seconds"]
    assert front_end.charges == [CALL_SESSION_ID]
    assert front_end.call_session(CALL_SESSION_ID) == {
        "status": "completed",
        "duration": row["response_time_seconds"],
        "billed": True,
    }
    return row


async def test_an_authenticated_browser_call_ends_stored_and_billed(
    settings: Settings, tmp_path: Path, front_end: FrontEnd
) -> None:
    loaders, _, _ = fake_loaders()
    bearer = [("Authorization", f"Bearer {SECRET}")]
    async with telephony_server(settings, tmp_path, loaders, **server_settings(front_end)) as srv:
        with trio.fail_after(60):
            async with connect(srv.ws_url + "/ws/secure/healthcare", bearer) as client:
                ready = await client.until("ready")
                await client.send_json({"type": "start", "context": CONTEXT})
                for digit in KEYS.values():
                    await wait_prompt(client)
                    await client.send_json({"type": "dtmf", "digit": digit})
                result = (await client.until("result", timeout=20))["result"]
                await client.closed()
            submission, billing = await handed_over(front_end)
    assert result["outcome"] == "completed"
    row = check_stored(front_end, submission, billing)
    assert row["call_session_id"] == ready["session_id"]


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
async def test_a_telephony_call_ends_stored_and_billed(
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
    async with telephony_server(settings, tmp_path, loaders, **server_settings(front_end)) as srv:
        with trio.fail_after(60):
            async with open_peer(peer_type, srv.ws_url + path, headers) as peer:
                await peer.setup(CONTEXT, **ids)
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYS)
                await peer.closed.wait()
            submission, billing = await handed_over(front_end)
    assert peer.close_code == 1000
    row = check_stored(front_end, submission, billing)
    assert row["metadata_json"]["call_context"]["call_session_id"] == CALL_SESSION_ID


async def test_a_refused_call_is_stored_empty_and_posted_as_answered(
    settings: Settings, tmp_path: Path, front_end: FrontEnd
) -> None:
    """A call that ends before the questionnaire (consent refused) is still posted, as
    ``answered``: the line was used, so the front end bills it when it lasted."""
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, **server_settings(front_end)) as srv:
        with trio.fail_after(60):
            async with open_peer(MaqsamPeer, srv.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as peer:
                await peer.setup(CONTEXT, call_id="mq-refused")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, {"greeting": "2"})
                await peer.closed.wait()
            submission, billing = await handed_over(front_end)
    assert submission.status == 200, submission.reply
    [row] = front_end.stored_responses()
    assert row["answers_json"] == []
    assert row["metadata_json"]["outcome"] == "consent_refused"
    assert billing.body["status"] == "answered"
    assert front_end.charges == ([CALL_SESSION_ID] if billing.body["duration"] > 0 else [])
