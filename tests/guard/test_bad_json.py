"""Bad JSON of any kind costs the frame, never the call: huge numbers (int() refuses more than
4300 digits with a ValueError), huge strings and deep nesting, on every protocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.errors import ProtocolError
from hana_voice.protocols.browser import BrowserCodec
from hana_voice.protocols.legacy import LegacyCodec
from hana_voice.protocols.maqsam import MaqsamCodec
from hana_voice.protocols.twilio import TwilioCodec
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.conftest import run_server
from tests.telephony.peers import MaqsamPeer, TwilioPeer, open_peer
from tests.telephony.support import (
    MAQSAM_AUTH,
    MAQSAM_CUSTOM,
    MAQSAM_PATH,
    TELEPHONY_TOKEN,
    telephony_server,
)
from tests.wsclient import connect

HUGE_NUMBER = '{"type": "dtmf", "event": "dtmf", "digit": ' + "9" * 5000 + "}"
NESTED = '{"type": ' + "[" * 100_000 + "]" * 100_000 + "}"
HUGE_STRING = '{"type": "' + "x" * 500_000 + '"}'
BAD = [HUGE_NUMBER, NESTED, HUGE_STRING, '{"data": -' + "1" * 4400 + "}"]


@pytest.mark.parametrize("codec_type", [BrowserCodec, MaqsamCodec, TwilioCodec])
@pytest.mark.parametrize("frame", BAD, ids=["number", "nested", "string", "negative"])
def test_every_codec_turns_bad_json_into_a_non_fatal_error(
    codec_type: type[BrowserCodec | MaqsamCodec | TwilioCodec], frame: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        codec_type().receive(frame)
    assert not caught.value.fatal
    assert "9" * 50 not in str(caught.value)


def test_legacy_codec_takes_text_frames_without_parsing_numbers() -> None:
    # The legacy dialect reads "tts:<text>"; anything else is a named, non-fatal error.
    with pytest.raises(ProtocolError) as caught:
        LegacyCodec().receive(HUGE_NUMBER)
    assert not caught.value.fatal


async def test_browser_call_survives_bad_json(settings: Settings) -> None:
    async with run_server(settings) as server:
        for path in ("/ws", "/ws/tts", "/ws/echo"):
            async with connect(server.ws_url + path) as client:
                await client.send_json({"type": "start"})
                await client.until("ready")
                for frame in BAD:
                    await client.send(frame)
                    error = await client.until("error")
                    assert error["code"] in ("invalid_json", "unknown_type", "frame_too_large")
                await client.send_json({"type": "stop"})
                code, _ = await client.closed()
                assert code == 1000, path


@pytest.mark.parametrize("peer_type", [MaqsamPeer, TwilioPeer])
async def test_live_telephony_call_survives_a_huge_number(
    settings: Settings, tmp_path: Path, peer_type: type[MaqsamPeer | TwilioPeer]
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        if peer_type is MaqsamPeer:
            url, headers = server.ws_url + MAQSAM_PATH, MAQSAM_AUTH
        else:
            url = server.ws_url + f"/ws/telephony/healthcare?token={TELEPHONY_TOKEN}"
            headers = []
        with trio.fail_after(20):
            async with open_peer(peer_type, url, headers) as peer:
                await peer.setup(MAQSAM_CUSTOM)
                if peer_type is MaqsamPeer:
                    await peer.ready.wait()
                else:
                    await trio.sleep(0.2)
                for frame in BAD:
                    await peer.send(frame)
                with trio.move_on_after(1.0):
                    await peer.closed.wait()
                assert not peer.closed.is_set(), (peer.close_code, peer.close_reason)


async def test_close_reasons_and_logs_never_echo_client_values(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hana_voice")
    phone = "+966501234567"
    starts: list[dict[str, Any]] = [
        {"type": "start", "sample_rate": 966501234567},
        {"type": "start", "encoding": phone},
        {"type": "start", "output_encoding": phone},
    ]
    async with run_server(settings) as server:
        for start in starts:
            async with connect(server.ws_url + "/ws") as client:
                await client.send_json(start)
                code, reason = await client.closed()
            assert code == 1008
            assert reason is not None and "966501234567" not in reason
    assert "966501234567" not in caplog.text
