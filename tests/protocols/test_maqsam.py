"""MaqsamCodec: golden frames, every bad input, properties."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.events import AudioIn, AudioOut, CallStarted, Ready
from hana_voice.protocols import Codec, MaqsamCodec
from tests.protocols.golden import load, run_scenario, scenario_ids
from tests.protocols.strategies import any_frames, feed_without_surprises, json_values

SCENARIOS = load("maqsam")
SETUP = json.dumps(
    {"type": "session.setup", "apiKey": "k" * 40, "data": {"context": {"id": "call-1"}}}
)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_ids(SCENARIOS))
def test_golden(scenario: dict[str, Any]) -> None:
    run_scenario(MaqsamCodec(**scenario["codec"]), scenario["steps"])


def test_is_a_codec() -> None:
    codec: Codec = MaqsamCodec()
    assert codec.echoes_marks


def test_setup_exposes_the_api_key_but_never_shows_it() -> None:
    assert MaqsamCodec().setup_api_key is None
    codec = MaqsamCodec()
    [started] = codec.receive(SETUP)
    assert isinstance(started, CallStarted)
    assert codec.setup_api_key == "k" * 40
    assert "k" * 40 not in repr(codec)
    assert "k" * 40 not in repr(started)
    assert codec.call_id == "call-1"


def test_phone_numbers_never_reach_the_context() -> None:
    [scenario] = [s for s in SCENARIOS if s["name"] == "outbound campaign call"]
    [started] = MaqsamCodec().receive(json.dumps(scenario["steps"][0]["in"]["json"]))
    assert isinstance(started, CallStarted)
    shown = repr(started)
    for number in ("962791234567", "966112345678", "966501234567", "50 123 4567"):
        assert number not in shown


def _setup_with(custom: dict[str, Any]) -> str:
    context = {"id": 42, "custom": custom}
    return json.dumps({"type": "session.setup", "data": {"context": context}})


@pytest.mark.parametrize(
    ("custom", "url_choice", "expected"),
    [
        ({"questionnaire_id": 12}, None, "12"),
        ({"questionnaire_id": 12}, "inbound", "12"),
        ({}, "inbound", "inbound"),
        ({"questionnaire_id": ""}, "inbound", "inbound"),
        ({}, None, None),
    ],
)
def test_questionnaire_from_custom_numbers_or_the_agent_url(
    custom: dict[str, Any], url_choice: str | None, expected: str | None
) -> None:
    [started] = MaqsamCodec(questionnaire=url_choice).receive(_setup_with(custom))
    assert isinstance(started, CallStarted)
    assert started.questionnaire_id == expected
    assert started.call_id == "42"


def test_ready_is_sent_once() -> None:
    codec = MaqsamCodec()
    codec.receive(SETUP)
    frames = [f for _ in range(3) for f in codec.send(Ready("s"))]
    assert frames == ['{"type":"session.ready"}']
    assert codec.ready_sent


@pytest.mark.parametrize("chunk_ms", [10, 20, 40, 100])
def test_reply_audio_is_split_into_chunks_of_at_most_chunk_ms(chunk_ms: int) -> None:
    codec = MaqsamCodec(chunk_ms=chunk_ms)
    pcm = bytes(2 * 8000)  # one second
    frames = codec.send(AudioOut("u", pcm, 8000))
    sizes = [len(base64.b64decode(json.loads(f)["data"]["audio"])) for f in frames]
    assert sum(sizes) == 8000
    assert max(sizes) == 8 * chunk_ms
    assert len(frames) == 1000 // chunk_ms


@pytest.mark.parametrize("chunk_ms", [0, 9, 101])
def test_chunk_ms_outside_10_to_100_is_refused(chunk_ms: int) -> None:
    with pytest.raises(ValueError, match="chunk_ms"):
        MaqsamCodec(chunk_ms=chunk_ms)


@given(
    any_frames(
        "type",
        ["session.setup", "audio.input", "call.mark", "call.dtmf", "call.hangup"],
        ["apiKey", "audio", "digit", "label", "context", "custom", "id"],
    )
)
def test_random_frames_raise_only_protocol_errors(frames: list[str | bytes]) -> None:
    feed_without_surprises(MaqsamCodec(), frames)
    codec = MaqsamCodec()
    codec.receive(SETUP)
    feed_without_surprises(codec, frames)


@given(st.binary(max_size=400))
def test_audio_round_trips_through_the_codec(ulaw: bytes) -> None:
    codec = MaqsamCodec()
    codec.receive(SETUP)
    message = {"type": "audio.input", "data": {"audio": base64.b64encode(ulaw).decode()}}
    received = codec.receive(json.dumps(message))
    if not ulaw:
        assert received == []
        return
    [audio] = received
    assert isinstance(audio, AudioIn)
    assert (audio.sample_rate, len(audio.pcm)) == (8000, 2 * len(ulaw))
    frames = codec.send(AudioOut("u", audio.pcm, audio.sample_rate))
    echoed = b"".join(base64.b64decode(json.loads(f)["data"]["audio"]) for f in frames)
    # 0x7F and 0xFF both decode to zero, which encodes as 0xFF.
    assert echoed == ulaw.replace(b"\x7f", b"\xff")


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "direction": json_values,
            "timestamp": json_values,
            "custom": st.one_of(json_values, st.dictionaries(st.text(max_size=20), json_values)),
        },
    ),
    json_values,
)
def test_random_setups_raise_only_protocol_errors(context: dict[str, Any], api_key: Any) -> None:
    message = {"type": "session.setup", "apiKey": api_key, "data": {"context": context}}
    feed_without_surprises(MaqsamCodec(), [json.dumps(message)])
