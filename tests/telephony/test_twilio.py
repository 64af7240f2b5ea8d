"""Twilio-style media streams against a real server, driven by a simulated provider."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, spoken
from tests.telephony.peers import (
    CALLEE_NUMBER,
    CALLER_NUMBER,
    RATE,
    TwilioPeer,
    keypad_caller,
    open_peer,
    prompt_name,
)
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_EXPECTED,
    KEYPAD_QUESTIONNAIRE,
    TELEPHONY_TOKEN,
    answers_of,
    no_sessions_left,
    stored_call,
    telephony_server,
)

PATH = "/ws/telephony/healthcare"
WRONG_TOKEN = "missing or wrong telephony token"
QUERY = f"?token={TELEPHONY_TOKEN}"
CUSTOM = {
    "questionnaire_id": KEYPAD_QUESTIONNAIRE,
    "patient_id": "P-2002",
    "hospital_id": "H-9",
    "campaign_id": "C-7",
}


@pytest.mark.parametrize("bearer", [False, True], ids=["query-token", "bearer"])
async def test_keypad_questionnaire_over_media_streams(
    settings: Settings, tmp_path: Path, bearer: bool
) -> None:
    loaders, _, _ = fake_loaders()
    headers = [("Authorization", f"Bearer {TELEPHONY_TOKEN}")] if bearer else []
    async with telephony_server(settings, tmp_path, loaders) as server:
        url = server.ws_url + PATH + ("" if bearer else QUERY)
        with trio.fail_after(30):
            async with open_peer(TwilioPeer, url, headers) as peer:
                await peer.setup(CUSTOM, call_sid="CA-keypad")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
        # Media streams have no hang-up message: closing the socket ends the <Stream>.
        assert peer.close_code == 1000
        assert peer.close_reason == "questionnaire ended: completed"
        assert all(m.get("streamSid") == peer.stream_sid for _, m in peer.received)
        assert {m["event"] for _, m in peer.received} == {"media", "mark"}
        assert [prompt_name(p.label or "") for p in peer.prompts] == [
            "greeting",
            "medication",
            "chest_pain",
            "pain_level",
            "condition",
            "closing",
        ]
        assert all(0 < s <= 0.1 for p in peer.prompts for _, s in p.chunks)
        stored = await stored_call(server, "CA-keypad")
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert stored["template_id"] == KEYPAD_QUESTIONNAIRE
    assert answers_of(stored) == KEYPAD_EXPECTED
    metadata = stored["metadata"]
    assert metadata["patient_id"] == "P-2002" and metadata["campaign_id"] == "C-7"
    assert metadata["channel"] == "telephony"
    dumped = json.dumps(stored)
    assert CALLER_NUMBER not in dumped and CALLEE_NUMBER not in dumped


@pytest.mark.parametrize(
    ("query", "headers", "token", "reason"),
    [
        ("", [], TELEPHONY_TOKEN, WRONG_TOKEN),
        ("?token=wrong", [], TELEPHONY_TOKEN, WRONG_TOKEN),
        ("", [("Authorization", "Bearer wrong")], TELEPHONY_TOKEN, WRONG_TOKEN),
        (QUERY, [], None, "telephony integration is not configured (TELEPHONY_TOKEN unset)"),
    ],
    ids=["missing", "wrong-query", "wrong-bearer", "unset"],
)  # fmt: skip
async def test_bad_or_unset_token_is_refused_with_1008(
    settings: Settings,
    tmp_path: Path,
    query: str,
    headers: list[tuple[str, str]],
    token: str | None,
    reason: str,
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, telephony_token=token) as server:
        with trio.fail_after(10):
            async with open_peer(TwilioPeer, server.ws_url + PATH + query, headers) as peer:
                with contextlib.suppress(ConnectionClosed):
                    await peer.setup(CUSTOM)
                await peer.closed.wait()
        assert (peer.close_code, peer.close_reason) == (1008, reason)
        assert not peer.prompts
        await no_sessions_left(server)


async def test_caller_speech_clears_the_prompt(settings: Settings, tmp_path: Path) -> None:
    stt = FakeSpeechToText(["نعم"])
    loaders, _, _ = fake_loaders(stt=stt, tts=FakeTextToSpeech(ms_per_char=60, chunk_ms=100))
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            async with open_peer(TwilioPeer, server.ws_url + PATH + QUERY) as peer:
                await peer.setup(CUSTOM)
                peer.nursery.start_soon(peer.stream_line)
                while not peer.prompts:
                    await trio.sleep(0.01)
                await trio.sleep(0.5)
                peer.say(spoken(RATE), onset_seconds=0.5)
                label = await peer.heard.receive()
        assert label.endswith("q:medication"), "the spoken yes answered the consent question"
        greeting = peer.prompts[0]
        assert greeting.interrupted and greeting.label is None
        (clear,) = peer.barge_ins
        (onset,) = peer.speech_onsets
        assert 0 < clear - onset < 0.6
        assert greeting.last_at <= clear
        await no_sessions_left(server)


async def test_pressing_zero_without_the_rest_api_promises_a_call_back(
    settings: Settings, tmp_path: Path
) -> None:
    """No TWILIO_* settings: the transfer cannot be made, so the caller is told a person will
    call back (never just cut off) and the escalation is stored as transfer_failed."""
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(30):
            async with open_peer(TwilioPeer, server.ws_url + PATH + QUERY) as peer:
                await peer.setup(CUSTOM, call_sid="CA-transfer")
                await keypad_caller(peer, {"greeting": "1", "medication": "0"})
        transfer = peer.prompt("escalation_transfer")
        call_back = peer.prompt("transfer_failed")
        assert transfer.heard_at is not None and call_back.heard_at is not None
        assert call_back.first_at >= transfer.heard_at
        assert peer.close_code == 1000
        assert peer.close_reason == "questionnaire ended: transfer_failed"
        stored = await stored_call(server, "CA-transfer")
        await no_sessions_left(server)
    assert (stored["status"], stored["outcome"]) == ("escalated", "transfer_failed")


async def test_stop_ends_the_call_and_keeps_the_answers(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            async with open_peer(TwilioPeer, server.ws_url + PATH + QUERY) as peer:
                await peer.setup(CUSTOM, call_sid="CA-stop")
                async for label in peer.heard:
                    if label.endswith("q:chest_pain"):
                        break
                    await peer.press(KEYPAD_ANSWERS[prompt_name(label)])
                await peer.send(peer.stop_message())
                await peer.closed.wait()
        assert peer.close_code == 1000
        assert peer.close_reason == "provider sent stop"
        stored = await stored_call(server, "CA-stop")
        await no_sessions_left(server)
    assert stored["status"] == "incomplete"
    assert answers_of(stored) == {"medication": "yes"}


async def test_bad_input_is_ignored_and_logged(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hana_voice")
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(30):
            async with open_peer(TwilioPeer, server.ws_url + PATH + QUERY) as peer:
                await peer.send(peer.audio_message(b"\xff" * 160))  # before start
                await peer.send(b"binary")
                await peer.send("[1, 2")
                await peer.send({"event": "hello"})
                await peer.setup(CUSTOM, call_sid="CA-bad")
                await peer.setup(CUSTOM, call_sid="CA-bad-again")
                media = peer.audio_message(b"")
                media["media"]["payload"] = "not base64!"
                await peer.send(media)
                await peer.send(peer.dtmf_message("A"))
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
            async with server.client() as http:
                assert (await http.get("/health")).status_code == 200
        assert peer.close_reason == "questionnaire ended: completed"
        stored = await stored_call(server, "CA-bad")
        await no_sessions_left(server)
    assert answers_of(stored) == KEYPAD_EXPECTED
    codes = {
        getattr(r, "hana_fields", {}).get("code")
        for r in caplog.records
        if r.getMessage() == "call.client_error"
    }
    expected = {"not_set_up", "binary_frame", "invalid_json", "unknown_type"}
    assert expected | {"duplicate_start", "bad_audio", "bad_dtmf"} <= codes


async def test_unsupported_media_format_closes_with_a_reason(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(10):
            async with open_peer(TwilioPeer, server.ws_url + PATH + QUERY) as peer:
                wide = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
                await peer.setup(CUSTOM, media_format=wide)
                await peer.closed.wait()
        assert peer.close_code == 1008
        assert peer.close_reason is not None and "unsupported media format" in peer.close_reason
        await no_sessions_left(server)
