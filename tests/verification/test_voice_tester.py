"""bin/voice-tester against real servers with fake engines: browser JSON, Maqsam, Twilio, legacy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.audio.wav import read_wav, write_wav
from hana_voice.settings import Settings
from hana_voice.verification.voice_tester import (
    choose_mode,
    endpoint_url,
    main,
    parse_dtmf,
    run_tester,
)
from hana_voice.verification.voice_tester_sessions import Options
from tests.calls.fakes import fake_loaders, live, spoken
from tests.conftest import SECRET, RunningServer, run_server
from tests.verification.test_verify import MAQSAM_TOKEN, TELEPHONY_TOKEN, threaded_server


def _wav(tmp_path: Path, rate: int = 16000) -> Path:
    path = tmp_path / "in.wav"
    path.write_bytes(write_wav(spoken(rate), rate))
    return path


def _log(out: Path) -> list[dict[str, Any]]:
    lines = (out / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _assert_valid_replies(replies: list[Path], rate: int) -> None:
    assert replies
    for path in replies:
        pcm, got_rate = read_wav(path.read_bytes())
        assert got_rate == rate
        assert pcm


async def _loaded(server: RunningServer) -> None:
    with trio.fail_after(10):
        await server.services.engines.loaded.wait()


async def test_browser_questionnaire_by_voice_and_keypad(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("نعم")
    out = tmp_path / "replies"
    options = Options(
        url="",  # set once the server has a port
        endpoint="/ws/healthcare-questionnaire",
        wav=_wav(tmp_path),
        out=out,
        dtmf=["", "1"],  # nothing after the greeting (the voice answers), 1 after question 1
        idle=1.0,
        speed=2.0,
    )
    async with run_server(live(settings), loaders) as server:
        await _loaded(server)
        options.url = server.http_url
        with trio.fail_after(30):
            outcome = await run_tester(options)
    _assert_valid_replies(outcome.replies, 16000)
    assert len(outcome.replies) >= 3  # greeting, question 1, question 2
    assert outcome.transcripts == ["نعم"]
    log = _log(out)
    sent = [e["message"] for e in log if e["dir"] == "out"]
    assert sent[0] == {
        "type": "start",
        "encoding": "pcm_s16le",
        "sample_rate": 16000,
        "output_encoding": "pcm_s16le",
    }
    assert {"type": "dtmf", "digit": "1"} in sent
    received = [e["message"].get("type") for e in log if e["dir"] == "in"]
    assert received[0] == "ready"
    assert "audio.end" in received
    saved = [e["message"]["saved"] for e in log if e["dir"] == "note"]
    assert saved == [p.name for p in outcome.replies]


async def test_maqsam_with_auth_header_and_dtmf(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    out = tmp_path / "maqsam"
    options = Options(
        url="",
        endpoint="/ws/maqsam/healthcare",
        wav=_wav(tmp_path, 22050),
        out=out,
        maqsam_token=MAQSAM_TOKEN,
        dtmf=["1"],
        idle=1.0,
        speed=4.0,
    )
    async with run_server(live(settings, maqsam_token=MAQSAM_TOKEN), loaders) as server:
        await _loaded(server)
        options.url = server.ws_url
        with trio.fail_after(30):
            outcome = await run_tester(options)
    _assert_valid_replies(outcome.replies, 8000)
    log = _log(out)
    types = [(e["dir"], e["message"].get("type")) for e in log]
    assert types[0] == ("out", "session.setup")
    assert ("in", "session.ready") in types
    assert ("out", "call.mark") in types  # marks are echoed
    assert ("out", "call.dtmf") in types
    streamed = [e["message"] for e in log if e["message"].get("type") == "response.stream"]
    assert streamed and all(isinstance(m["data"]["audio"]["bytes"], int) for m in streamed)
    assert MAQSAM_TOKEN not in (out / "messages.jsonl").read_text(encoding="utf-8")


async def test_twilio_media_stream_with_token(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    out = tmp_path / "twilio"
    async with run_server(live(settings, telephony_token=TELEPHONY_TOKEN), loaders) as server:
        await _loaded(server)
        options = Options(
            url=server.ws_url + "/ws/telephony/healthcare",
            wav=_wav(tmp_path, 8000),
            out=out,
            token=TELEPHONY_TOKEN,
            idle=1.0,
            speed=4.0,
        )
        with trio.fail_after(30):
            outcome = await run_tester(options)
    _assert_valid_replies(outcome.replies, 8000)
    events = [e["message"].get("event") for e in _log(out)]
    assert events[:2] == ["connected", "start"]
    assert "media" in events and "mark" in events


@pytest.mark.parametrize("signs", [True, False])
async def test_twilio_signed_upgrade(settings: Settings, tmp_path: Path, signs: bool) -> None:
    """With TWILIO_AUTH_TOKEN on the server, --twilio-auth-token signs the upgrade as Twilio."""
    loaders, _, _ = fake_loaders()
    auth_token = "twilio-auth-token-for-the-tester"
    configured = live(settings, telephony_token=TELEPHONY_TOKEN, twilio_auth_token=auth_token)
    async with run_server(configured, loaders) as server:
        await _loaded(server)
        options = Options(
            url=server.ws_url + "/ws/telephony/healthcare",
            wav=_wav(tmp_path, 8000),
            out=tmp_path / "signed",
            token=TELEPHONY_TOKEN,
            twilio_auth_token=auth_token if signs else None,
            idle=1.0,
            speed=4.0,
        )
        with trio.fail_after(30):
            outcome = await run_tester(options)
    if signs:
        _assert_valid_replies(outcome.replies, 8000)
    else:
        assert outcome.close == (1008, "missing X-Twilio-Signature")


async def test_refused_call_reports_the_close(settings: Settings, tmp_path: Path) -> None:
    async with run_server(settings) as server:
        options = Options(url=server.ws_url, endpoint="/ws/secure", say="مرحبا", out=tmp_path)
        with trio.fail_after(30):
            outcome = await run_tester(options)
    assert outcome.close is not None and outcome.close[0] == 1008
    assert outcome.replies == []


def test_legacy_echo_and_tts_through_main(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("أخذت الدواء")
    wav = _wav(tmp_path)
    with threaded_server(live(settings), loaders) as url:
        echo = main(
            [url, "--endpoint", "/ws/echo", "--wav", str(wav), "--out", str(tmp_path / "e")]
        )
        tts = main([url + "/ws/tts", "--say", "مرحبا بك", "--out", str(tmp_path / "t")])
        json_tts = main(
            [url, "--endpoint", "/ws/tts", "--mode", "browser", "--say", "مرحبا", "--idle", "0.5",
             "--secret", SECRET, "--out", str(tmp_path / "j")]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert (echo, tts, json_tts) == (0, 0, 0), out
    assert "transcript: أخذت الدواء" in out
    _assert_valid_replies([tmp_path / "t" / "reply-001.wav"], 16000)
    _assert_valid_replies([tmp_path / "j" / "reply-001.wav"], 16000)
    assert SECRET not in out


def test_options_parsing() -> None:
    assert parse_dtmf("11") == ["1", "1"]
    assert parse_dtmf("1,,3#") == ["1", "3#"]
    assert parse_dtmf(None) == []
    options = Options(url="https://voice.example.com/", endpoint="ws/maqsam", token="a b")
    assert endpoint_url(options) == "wss://voice.example.com/ws/maqsam?token=a%20b"
    assert choose_mode(options) == "maqsam"
    assert choose_mode(Options(url="http://h:1")) == "browser"
    assert choose_mode(Options(url="ws://h:1/ws/echo")) == "legacy"
    assert choose_mode(Options(url="ws://h:1/ws/tts", say="x")) == "legacy"
    assert choose_mode(Options(url="ws://h:1/ws/tts", say="x", mode="browser")) == "browser"


def test_main_needs_audio_or_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["http://127.0.0.1:1"]) == 2
    assert "--wav FILE or --say TEXT" in capsys.readouterr().err
