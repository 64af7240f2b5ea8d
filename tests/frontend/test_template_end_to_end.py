"""The whole loop on the front end's own data: a template read from its ``template_versions``
by the template source runs a call (browser authenticated, Maqsam, Twilio-style), and the call
ends with the row stored by the contract-faithful results route and the billing post received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.calls.helpers import no_sessions_left
from tests.conftest import SECRET
from tests.frontend.conftest import (
    CALL_CONTEXT,
    CALL_SESSION_ID,
    CAMPAIGN_ID,
    HOSPITAL_ID,
    PATIENT_ID,
    front_end_settings,
)
from tests.frontend.database import SEEDED_TEMPLATE_ID
from tests.frontend.receiver import FrontEnd
from tests.telephony.peers import MaqsamPeer, Peer, TwilioPeer, keypad_caller, open_peer
from tests.telephony.support import MAQSAM_AUTH, TELEPHONY_TOKEN, telephony_server
from tests.wsclient import connect

#: Consent, q1 yes, q2 rating 4, q3 no, by keypad.
KEYS = {"greeting": "1", "q1": "1", "q2": "4", "q3": "2"}
#: As the front end stores them: its own words, in order.
ROW_ANSWERS = [("q1", "نعم"), ("q2", "4"), ("q3", "لا")]


async def _stored_and_billed(front_end: FrontEnd) -> dict[str, Any]:
    [submission] = await front_end.wait_for("/api/responses/submit")
    [billing] = await front_end.wait_for("/api/telephony/call-status")
    assert submission.status == 200, submission.reply
    assert (billing.status, billing.body["status"]) == (200, "completed")
    assert front_end.charges == [CALL_SESSION_ID]
    [row] = front_end.stored_responses()
    return row


def _check_row(row: dict[str, Any]) -> None:
    assert (row["template_id"], row["patient_id"]) == (SEEDED_TEMPLATE_ID, PATIENT_ID)
    assert (row["hospital_id"], row["campaign_id"]) == (HOSPITAL_ID, CAMPAIGN_ID)
    assert [(a["question_id"], a["response"]) for a in row["answers_json"]] == ROW_ANSWERS
    assert row["completion_rate"] == 1
    assert isinstance(row["response_time_seconds"], int)


async def test_browser_call_on_the_seeded_template_is_stored_and_billed(
    settings: Settings, tmp_path: Path, front_end: FrontEnd
) -> None:
    loaders, _, _ = fake_loaders()
    changes = front_end_settings(front_end)
    async with telephony_server(settings, tmp_path, loaders, **changes) as server:
        with trio.fail_after(60):
            async with connect(
                server.ws_url + "/ws/secure/healthcare", [("Authorization", f"Bearer {SECRET}")]
            ) as client:
                await client.until("ready")
                await client.send_json({"type": "start", "context": CALL_CONTEXT})
                for key in KEYS.values():
                    await client.until("audio.end", timeout=15)
                    await client.send_json({"type": "dtmf", "digit": key})
                result = await client.until("result", timeout=20)
                await client.closed()
            await no_sessions_left(server)
            row = await _stored_and_billed(front_end)
    assert result["result"]["questionnaire_id"] == SEEDED_TEMPLATE_ID
    _check_row(row)


TELEPHONY = [
    pytest.param(MaqsamPeer, "/ws/maqsam", MAQSAM_AUTH, {"call_id": "mq-e2e"}, id="maqsam"),
    pytest.param(
        TwilioPeer,
        f"/ws/telephony/healthcare?token={TELEPHONY_TOKEN}",
        [],
        {"call_sid": "CA-e2e"},
        id="twilio",
    ),
]


@pytest.mark.parametrize(("peer_type", "path", "headers", "ids"), TELEPHONY)
async def test_phone_call_on_the_seeded_template_is_stored_and_billed(
    settings: Settings,
    tmp_path: Path,
    front_end: FrontEnd,
    peer_type: type[Peer],
    path: str,
    headers: list[tuple[str, str]],
    ids: dict[str, str],
) -> None:
    loaders, _, _ = fake_loaders()
    changes = front_end_settings(front_end)
    async with telephony_server(settings, tmp_path, loaders, **changes) as server:
        with trio.fail_after(60):
            async with open_peer(peer_type, server.ws_url + path, headers) as peer:
                await peer.setup(CALL_CONTEXT, **ids)
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYS)
                await peer.closed.wait()
            await no_sessions_left(server)
            row = await _stored_and_billed(front_end)
    assert peer.close_code == 1000
    _check_row(row)
