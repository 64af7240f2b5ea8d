"""The privacy filter catches phone-like values under any key, in the codecs and the store
(issue 11: ``emergency_contact`` numbers were stored and forwarded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.events import CallStarted
from hana_voice.privacy import looks_like_phone_number, strip_contact_data
from hana_voice.protocols.browser import BrowserCodec
from hana_voice.protocols.call_context import clean_context
from hana_voice.results.handover import build_payload
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.telephony.peers import MaqsamPeer, keypad_caller, open_peer
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    MAQSAM_AUTH,
    MAQSAM_CUSTOM,
    MAQSAM_PATH,
    stored_call,
    telephony_server,
)

PHONES = [
    "0501234567",
    "050 123 4567",
    "050-123-4567",
    "(011) 456-7890",
    "+966 50 123 4567",
    "00966501234567",
    "call me on +966501234567 after five",
    966501234567,
]
KEPT = ["1234567", 17, "1012345678", "2025-04-07 10:00:00", "P-1001", "C-2025-04", "H-7", "0.5"]


@pytest.mark.parametrize("value", PHONES)
def test_phone_like_values_are_caught(value: object) -> None:
    assert looks_like_phone_number(value)
    assert clean_context({"emergency_contact": value, "patient_id": "P-1"}) == {"patient_id": "P-1"}


@pytest.mark.parametrize("value", KEPT)
def test_ids_and_dates_are_kept(value: object) -> None:
    assert not looks_like_phone_number(value)
    assert clean_context({"patient_id": value}) == {"patient_id": value}


def test_store_filter_catches_values_at_any_depth() -> None:
    metadata: dict[str, Any] = {
        "patient_id": "P-1",
        "call_context": {"emergency_contact": "0501234567", "notes": ["+966501234567", "ok"]},
        "caller_number": "x",
    }
    assert strip_contact_data(metadata) == {"patient_id": "P-1", "call_context": {"notes": ["ok"]}}
    call = {
        "session_id": "s",
        "template_id": "t",
        "question_count": 0,
        "answers": [],
        "call_duration_seconds": 1.0,
        "metadata": metadata,
    }
    assert "0501234567" not in str(build_payload(call, "k"))


def test_browser_start_context_is_filtered() -> None:
    codec = BrowserCodec()
    (started,) = codec.receive(
        '{"type": "start", "context": {"patient_id": "P-1", "emergency_contact": "0501234567"}}'
    )
    assert isinstance(started, CallStarted)
    assert "emergency_contact" not in started.context


async def test_maqsam_custom_phone_under_a_harmless_key_is_never_stored(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    custom = {**MAQSAM_CUSTOM, "emergency_contact": "0501234567", "note": "+966 55 765 4321"}
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(60):
            async with open_peer(MaqsamPeer, server.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as peer:
                await peer.setup(custom, call_id="privacy-1")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
            stored = await stored_call(server, "privacy-1")
    text = str(stored)
    assert "0501234567" not in text and "765 4321" not in text
    assert stored["metadata"]["patient_id"] == "P-1001"
