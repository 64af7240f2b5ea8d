"""Maqsam's voice-agent protocol against a real server, driven by a simulated Maqsam peer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import trio

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, spoken
from tests.conftest import run_server
from tests.telephony.peers import (
    CALLEE_NUMBER,
    CALLER_NUMBER,
    MaqsamPeer,
    keypad_caller,
    open_peer,
)
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_EXPECTED,
    KEYPAD_QUESTIONNAIRE,
    MAQSAM_TOKEN,
    QUICK_QUESTIONNAIRE,
    answers_of,
    engines_ready,
    no_sessions_left,
    stored_call,
    telephony_settings,
)

PATH = "/ws/maqsam/healthcare"
AUTH = [("Auth", MAQSAM_TOKEN)]
CUSTOM = {
    "questionnaire_id": KEYPAD_QUESTIONNAIRE,
    "patient_id": "P-1001",
    "hospital_id": "H-7",
    "campaign_id": "C-2025-04",
    "patient_phone": CALLER_NUMBER,
}


async def test_keypad_questionnaire_with_header_auth(settings: Settings, tmp_path: Path) -> None:
    loaders, _, tts = fake_loaders()
    async with run_server(telephony_settings(settings, tmp_path), loaders) as server:
        await engines_ready(server)
        with trio.fail_after(30):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM, call_id="mq-keypad")
                await peer.ready.wait()
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
                await peer.closed.wait()
        assert peer.close_code == 1000
        assert peer.ready_count == 1
        assert peer.types()[0] == "ready", "session.ready comes before anything else"
        assert peer.hung_up_at is not None and peer.redirected_at is None
        closing = peer.prompt("closing")
        assert closing.heard_at is not None and peer.hung_up_at >= closing.heard_at
        assert peer.types()[-1] == "hangup"
        stored = await stored_call(server, "mq-keypad")
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert stored["template_id"] == KEYPAD_QUESTIONNAIRE
    assert answers_of(stored) == KEYPAD_EXPECTED
    metadata = stored["metadata"]
    assert (metadata["patient_id"], metadata["hospital_id"], metadata["campaign_id"]) == (
        "P-1001",
        "H-7",
        "C-2025-04",
    )
    assert metadata["channel"] == "maqsam"
    dumped = json.dumps(stored)
    assert CALLER_NUMBER not in dumped and CALLEE_NUMBER not in dumped
    assert "966" not in dumped
    assert tts.texts, "prompts were synthesised"
