"""Whole calls on a front-end template that do not complete: the template read from the
front end's ``template_versions`` (TEMPLATES_DATABASE_URL), the call ended early, and what
the faithful routes (receiver.py) then store and bill. Completed calls on every channel are
in test_template_end_to_end.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hana_voice.results.billing import CALL_STATUS_PATH
from hana_voice.results.handover import SUBMIT_PATH
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.frontend.conftest import (
    CALL_CONTEXT,
    CALL_SESSION_ID,
    front_end_settings,
)
from tests.frontend.receiver import Arrival, FrontEnd
from tests.telephony.peers import MaqsamPeer, keypad_caller, open_peer, prompt_name
from tests.telephony.support import MAQSAM_AUTH, MAQSAM_PATH, telephony_server


async def handed_over(front_end: FrontEnd) -> tuple[Arrival, Arrival]:
    [submission] = await front_end.wait_for(SUBMIT_PATH)
    [billing] = await front_end.wait_for(CALL_STATUS_PATH)
    return submission, billing


async def test_a_refused_call_is_stored_empty_and_posted_as_answered(
    settings: Settings, tmp_path: Path, front_end: FrontEnd
) -> None:
    """A call that ends before the questionnaire (consent refused) is still posted, as
    ``answered``: the line was used, so the front end bills it when it lasted."""
    loaders, _, _ = fake_loaders()
    changes = front_end_settings(front_end)
    async with telephony_server(settings, tmp_path, loaders, **changes) as srv:
        with trio.fail_after(60):
            async with open_peer(MaqsamPeer, srv.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as peer:
                await peer.setup(CALL_CONTEXT, call_id="mq-refused")
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


async def test_a_caller_who_hangs_up_is_stored_with_what_was_answered_and_billed(
    settings: Settings, tmp_path: Path, front_end: FrontEnd
) -> None:
    """Unanswered questions are left out (the route refuses an empty response); the call is
    posted as ``answered`` and billed."""
    loaders, _, _ = fake_loaders()
    changes = front_end_settings(front_end)
    async with telephony_server(settings, tmp_path, loaders, **changes) as srv:
        with trio.fail_after(60):
            async with open_peer(MaqsamPeer, srv.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as peer:
                await peer.setup(CALL_CONTEXT, call_id="mq-hangup")
                peer.nursery.start_soon(peer.stream_line)
                async for label in peer.heard:
                    if prompt_name(label) == "q2":
                        break
                    await peer.press({"greeting": "1", "q1": "1"}[prompt_name(label)])
                await peer.hang_up()
            submission, billing = await handed_over(front_end)
    assert submission.status == 200, submission.reply
    [row] = front_end.stored_responses()
    assert [(a["question_id"], a["response"]) for a in row["answers_json"]] == [("q1", "نعم")]
    assert row["completion_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert row["metadata_json"]["outcome"] == "partial"
    assert (billing.body["status"], billing.status) == ("answered", 200)
    assert front_end.charges == [CALL_SESSION_ID]
