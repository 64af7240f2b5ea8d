"""BrowserCodec: golden frames, every bad input, properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.errors import ProtocolError
from hana_voice.events import AudioIn, AudioOut, CallStarted
from hana_voice.protocols import BrowserCodec, Codec
from hana_voice.protocols.base import LegacyAudio
from tests.protocols.golden import load, run_scenario, scenario_ids
from tests.protocols.strategies import any_frames, feed_without_surprises

SCENARIOS = load("browser")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_ids(SCENARIOS))
def test_golden(scenario: dict[str, Any]) -> None:
    run_scenario(BrowserCodec(**scenario["codec"]), scenario["steps"])


def test_is_a_codec() -> None:
    codec: Codec = BrowserCodec()
    assert not codec.echoes_marks


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_every_documented_sample_rate_is_accepted(rate: int) -> None:
    [started] = BrowserCodec().receive(json.dumps({"type": "start", "sample_rate": rate}))
    assert isinstance(started, CallStarted)
    assert started.sample_rate == rate


def test_error_messages_name_the_field_and_the_accepted_values() -> None:
    with pytest.raises(ProtocolError) as caught:
        BrowserCodec().receive(json.dumps({"type": "start", "sample_rate": 11025}))
    assert str(caught.value) == (
        "start.sample_rate must be one of 8000, 16000, 22050, 24000, 44100, 48000"
    )
    with pytest.raises(ProtocolError) as caught:
        BrowserCodec().receive('{"type": "dtmf", "digit": 1.5}')
    assert str(caught.value) == "dtmf.digit must be one character of 0-9, * or #, got number"
    with pytest.raises(ProtocolError) as caught:
        BrowserCodec().receive('{"type": ')
    assert str(caught.value).startswith("invalid JSON at line 1 column 10")


def test_legacy_audio_is_refused_as_a_bug_of_the_session() -> None:
    with pytest.raises(ProtocolError) as caught:
        BrowserCodec().send(LegacyAudio(b"\0\0", 16000))
    assert (caught.value.code, caught.value.fatal, caught.value.close_code) == (
        "internal_error",
        True,
        1011,
    )


def test_unknown_output_encoding_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="output_encoding"):
        BrowserCodec(output_encoding="opus")


@given(
    any_frames(
        "type",
        ["start", "dtmf", "text", "say", "stop"],
        [
            "encoding",
            "sample_rate",
            "output_encoding",
            "context",
            "questionnaire_id",
            "digit",
            "text",
            "id",
            "call_id",
        ],
    )
)
def test_random_frames_raise_only_protocol_errors(frames: list[str | bytes]) -> None:
    feed_without_surprises(BrowserCodec(), frames)
    for encoding in ("mulaw", "wav"):
        codec = BrowserCodec()
        codec.receive(json.dumps({"type": "start", "encoding": encoding}))
        feed_without_surprises(codec, frames)


@given(st.binary(max_size=400).map(lambda b: b[: len(b) // 2 * 2]))
def test_pcm_passes_through_unchanged(pcm: bytes) -> None:
    codec = BrowserCodec()
    received = codec.receive(pcm)
    audio = [e for e in received if isinstance(e, AudioIn)]
    assert b"".join(a.pcm for a in audio) == pcm
    assert codec.send(AudioOut("u", pcm, 16000)) == ([pcm] if pcm else [])


@given(st.binary(min_size=1, max_size=400))
def test_mulaw_round_trips(ulaw: bytes) -> None:
    codec = BrowserCodec()
    start = {"type": "start", "encoding": "mulaw", "sample_rate": 8000, "output_encoding": "mulaw"}
    codec.receive(json.dumps(start))
    [audio] = codec.receive(ulaw)
    assert isinstance(audio, AudioIn)
    assert codec.send(AudioOut("u", audio.pcm, 8000)) == [ulaw.replace(b"\x7f", b"\xff")]


@given(st.binary(min_size=2, max_size=400).map(lambda b: b[: len(b) // 2 * 2]))
def test_wav_round_trips(pcm: bytes) -> None:
    codec = BrowserCodec(output_encoding="wav")
    codec.receive(json.dumps({"type": "start", "encoding": "wav", "sample_rate": 24000}))
    [wav] = codec.send(AudioOut("u", pcm, 24000))
    assert isinstance(wav, bytes)
    assert codec.receive(wav) == [AudioIn(pcm, 24000)]
