"""Maqsam calls under stress and bad input: floods, malformed frames, unechoed marks, espeak."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.engines.fake import FakeRecognizer, FakeSpeechToText
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, spoken
from tests.conftest import RunningServer
from tests.telephony.peers import (
    RATE,
    MaqsamPeer,
    echo_unless,
    keypad_caller,
    open_peer,
)
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_EXPECTED,
    QUICK_QUESTIONNAIRE,
    answers_of,
    no_sessions_left,
    stored_call,
    telephony_server,
)
from tests.telephony.support import MAQSAM_AUTH as AUTH
from tests.telephony.support import MAQSAM_CUSTOM as CUSTOM
from tests.telephony.support import MAQSAM_PATH as PATH


class _SlowRecognizerSTT(FakeSpeechToText):
    """A recogniser slower than real time, so a flood of caller speech outruns it."""

    def create_recognizer(self, sample_rate: int, phrases: Any = None) -> FakeRecognizer:
        recognizer = super().create_recognizer(sample_rate, phrases)
        accept = recognizer.accept

        def slow_accept(pcm: bytes) -> Any:
            time.sleep(0.05)
            return accept(pcm)

        recognizer.accept = slow_accept  # type: ignore[method-assign]  # a slower fake, per call
        return recognizer


async def test_audio_flood_is_dropped_and_counted_not_buffered(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hana_voice")
    loaders, _, _ = fake_loaders(stt=_SlowRecognizerSTT())
    # A burst allowance larger than the flood, so that it is the queue's byte bound that holds
    # (the real-time budget is tested in tests/guard/test_audio.py).
    async with telephony_server(settings, tmp_path, loaders, audio_burst_seconds=60.0) as server:
        with trio.fail_after(30):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM)
                await peer.heard.receive()
                speech = spoken(RATE, seconds=20.0, lead=0.2, tail=0.2)
                started = trio.current_time()
                await peer.flood(speech)
                flood_seconds = trio.current_time() - started
                # The call still answers: the keypad moves it on.
                await peer.press("1")
                label = await peer.heard.receive()
                assert label.endswith("q:medication")
        await no_sessions_left(server)
    assert flood_seconds < len(speech) / 2 / RATE / 2, "the reader never waited on the listener"
    fields = [getattr(r, "hana_fields", {}) for r in caplog.records]
    assert any(r.getMessage() == "call.falling_behind" for r in caplog.records)
    (end,) = [
        f for r, f in zip(caplog.records, fields, strict=True) if r.getMessage() == "call.end"
    ]
    assert end["stats"]["audio_dropped_frames"] > 0


async def _healthy_call(server: RunningServer, call_id: str) -> None:
    async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
        await peer.setup(CUSTOM, call_id=call_id)
        peer.nursery.start_soon(peer.stream_line)
        await keypad_caller(peer, KEYPAD_ANSWERS)
    assert peer.close_code == 1000


async def test_bad_input_is_ignored_and_logged_and_harms_no_other_call(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hana_voice")
    loaders, _, _ = fake_loaders()
    # The greeting's mark is never echoed: the watchdog must take it as played.
    never_greeting = echo_unless("greeting")
    async with (
        telephony_server(
            settings, tmp_path, loaders, default_questionnaire=QUICK_QUESTIONNAIRE
        ) as server,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_healthy_call, server, "mq-healthy")
        with trio.fail_after(30):
            async with open_peer(
                MaqsamPeer, server.ws_url + PATH, AUTH, echo=never_greeting
            ) as peer:
                await peer.send(peer.audio_message(b"\xff" * 160))  # before session.setup
                await peer.send(b"\x00\x01binary")
                await peer.send("{not json")
                await peer.send({"type": "session.teardown"})
                await peer.send({"no": "type"})
                await peer.setup({}, call_id="mq-bad")
                await peer.setup({}, call_id="mq-bad-again")
                await peer.send({"type": "audio.input", "data": {"audio": "%%% not base64"}})
                await peer.send({"type": "audio.input", "data": {"audio": 12}})
                for digit in ("x", "12", 99, None):
                    await peer.send(peer.dtmf_message(digit))
                await peer.send(peer.mark_message("never-sent"))
                peer.nursery.start_soon(peer.stream_line)
                # Nothing echoed the greeting: the watchdog starts its answer timer (1 s),
                # which runs out, and the greeting is asked again.
                while len(peer.prompts) < 2:
                    await trio.sleep(0.01)
                await peer.press("1")
                await keypad_caller(peer, {"medication": "1"})
            async with server.client() as http:
                assert (await http.get("/health")).status_code == 200
        assert peer.close_code == 1000 and peer.hung_up_at is not None
        assert peer.ready_count == 1
        stored = await stored_call(server, "mq-bad")
        healthy = await stored_call(server, "mq-healthy")
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert answers_of(stored) == {"medication": "yes"}
    assert healthy["status"] == "completed"
    assert answers_of(healthy) == KEYPAD_EXPECTED
    codes = {
        getattr(r, "hana_fields", {}).get("code")
        for r in caplog.records
        if r.getMessage() == "call.client_error"
    }
    expected = {"not_set_up", "binary_frame", "invalid_json", "unknown_type", "bad_message"}
    assert expected | {"duplicate_setup", "bad_audio", "bad_dtmf"} <= codes
    assert any(r.getMessage() == "call.mark_not_echoed" for r in caplog.records)
    assert not [r for r in caplog.records if r.getMessage() == "call.crashed"]


async def test_unreadable_setup_closes_with_a_reason(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(10):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.send({"type": "session.setup", "data": {"context": "nope"}})
                await peer.closed.wait()
        assert peer.close_code == 1008
        assert peer.close_reason == "session.setup.data.context must be an object, got string"
        await no_sessions_left(server)


@pytest.mark.slow
async def test_real_espeak_voice_over_maqsam(settings: Settings, tmp_path: Path) -> None:
    from hana_voice.engines.espeak_tts import load_espeak

    loaders, _, _ = fake_loaders()
    loaders = dataclasses.replace(loaders, espeak=lambda s: load_espeak("ar"))
    async with telephony_server(
        settings, tmp_path, loaders, default_questionnaire=QUICK_QUESTIONNAIRE
    ) as server:
        with trio.fail_after(40):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup({}, call_id="mq-espeak")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, {"greeting": "1", "medication": "2"})
        assert peer.close_code == 1000 and peer.hung_up_at is not None
        greeting = peer.prompt("greeting")
        assert greeting.seconds > 1.0, "espeak spoke the greeting"
        assert all(seconds <= 0.1 for _, seconds in greeting.chunks)
        assert greeting.last_at - greeting.first_at >= greeting.seconds - 0.35
        stored = await stored_call(server, "mq-espeak")
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert answers_of(stored) == {"medication": "no"}
