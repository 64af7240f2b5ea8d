"""LegacyCodec and detect_dialect: golden frames, bad input, properties."""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.events import AudioEnd, AudioOut, AudioStart, SayRequest
from hana_voice.protocols import Codec, LegacyCodec, detect_dialect
from hana_voice.protocols.base import LegacyAudio, UtteranceIn
from tests.protocols.golden import frame_from, load, run_scenario, scenario_ids
from tests.protocols.strategies import feed_without_surprises

FIXTURE = load("legacy")
SCENARIOS = FIXTURE["scenarios"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_ids(SCENARIOS))
def test_golden(scenario: dict[str, Any]) -> None:
    run_scenario(LegacyCodec(**scenario["codec"]), scenario["steps"])


@pytest.mark.parametrize(
    "case",
    FIXTURE["dialects"],
    ids=[f"{c['endpoint']}-{c['dialect']}-{i}" for i, c in enumerate(FIXTURE["dialects"])],
)
def test_detect_dialect(case: dict[str, Any]) -> None:
    assert detect_dialect(frame_from(case["frame"]), case["endpoint"]) == case["dialect"]


def test_is_a_codec() -> None:
    codec: Codec = LegacyCodec()
    assert not codec.echoes_marks


def test_reprs_carry_no_audio_or_voice() -> None:
    assert repr(UtteranceIn(b"\x1a\x45\xdf\xa3secret")) == "UtteranceIn(<10 bytes>)"
    assert "secret" not in repr(LegacyAudio(b"secret", 16000))


def test_the_reply_is_a_playable_wav() -> None:
    codec = LegacyCodec()
    pcm = bytes(range(200))
    codec.send(AudioStart("u", "مرحبا", 22050))
    codec.send(AudioOut("u", pcm[:100], 22050))
    codec.send(AudioOut("u", pcm[100:], 22050))
    [wav] = codec.send(AudioEnd("u"))
    assert isinstance(wav, bytes)
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (
            1,
            2,
            22050,
        )
        assert reader.readframes(reader.getnframes()) == pcm


def test_audio_without_audio_start_still_makes_a_file() -> None:
    codec = LegacyCodec()
    assert codec.send(AudioOut("u", b"\0\0", 16000)) == []
    [wav] = codec.send(AudioEnd("u"))
    assert isinstance(wav, bytes) and wav.startswith(b"RIFF")


@given(
    st.lists(
        st.one_of(
            st.text(max_size=40), st.binary(max_size=40), st.text(max_size=20).map("tts:".__add__)
        ),
        max_size=12,
    )
)
def test_random_frames_raise_only_protocol_errors(frames: list[str | bytes]) -> None:
    feed_without_surprises(LegacyCodec(max_text_chars=20), frames)


@given(st.text(min_size=1, max_size=50).filter(str.strip))
def test_tts_text_is_read_back_stripped(text: str) -> None:
    assert LegacyCodec().receive("tts:" + text) == [SayRequest(text.strip())]


@given(
    st.one_of(st.text(max_size=40), st.binary(max_size=40)),
    st.sampled_from(["/ws", "/ws/echo", "/ws/tts", "/ws/echo/"]),
)
def test_detect_dialect_is_total(frame: str | bytes, endpoint: str) -> None:
    assert detect_dialect(frame, endpoint) in ("json", "legacy")
