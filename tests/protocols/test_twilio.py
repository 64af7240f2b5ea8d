"""TwilioCodec: golden frames, every bad input, properties."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.events import AudioIn, AudioOut, CallStarted
from hana_voice.protocols import Codec, TwilioCodec
from tests.protocols.golden import load, run_scenario, scenario_ids
from tests.protocols.strategies import any_frames, feed_without_surprises, json_values

SCENARIOS = load("twilio")
START = json.dumps(
    {
        "event": "start",
        "streamSid": "MZ1",
        "start": {
            "streamSid": "MZ1",
            "callSid": "CA1",
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_ids(SCENARIOS))
def test_golden(scenario: dict[str, Any]) -> None:
    run_scenario(TwilioCodec(**scenario["codec"]), scenario["steps"])


def test_is_a_codec() -> None:
    codec: Codec = TwilioCodec()
    assert codec.echoes_marks


def test_start_keeps_the_stream_and_drops_phone_numbers_and_tokens() -> None:
    [scenario] = [s for s in SCENARIOS if s["name"] == "media stream call"]
    codec = TwilioCodec()
    [started] = codec.receive(json.dumps(scenario["steps"][1]["in"]["json"]))
    assert isinstance(started, CallStarted)
    assert codec.stream_sid == "MZ18ad3ab5a668481ce02b83e7395059f0"
    assert codec.call_sid == "CA0fd7d5f3b9c7d1c0b4f4e9a8e0c1b2a3"
    assert not {"From", "To", "caller", "token"} & set(started.context)
    assert "966501234567" not in repr(started)


def test_token_parameter_is_kept_for_the_session_but_never_shown() -> None:
    assert TwilioCodec().setup_token is None
    codec = TwilioCodec(questionnaire="from-url")
    start = {"streamSid": "MZ1", "callSid": "CA1", "customParameters": {"token": "t" * 40}}
    [started] = codec.receive(json.dumps({"event": "start", "start": start}))
    assert isinstance(started, CallStarted)
    assert codec.setup_token == "t" * 40
    assert "t" * 40 not in repr(codec) and "t" * 40 not in repr(started)
    assert started.questionnaire_id == "from-url"


@pytest.mark.parametrize("token", [7, None, ["t"], {"t": 1}])
def test_a_token_parameter_that_is_not_a_string_is_no_token(token: Any) -> None:
    codec = TwilioCodec()
    start = {"streamSid": "MZ1", "customParameters": {"token": token, "questionnaire_id": 3}}
    [started] = codec.receive(json.dumps({"event": "start", "start": start}))
    assert isinstance(started, CallStarted)
    assert codec.setup_token is None and started.questionnaire_id == "3"


def test_stream_sid_may_come_only_at_the_top_level() -> None:
    codec = TwilioCodec()
    [started] = codec.receive(json.dumps({"event": "start", "streamSid": "MZ9", "start": {}}))
    assert isinstance(started, CallStarted)
    assert started.call_id == "MZ9"
    assert codec.stream_sid == "MZ9"


@given(
    any_frames(
        "event",
        ["connected", "start", "media", "dtmf", "mark", "stop"],
        [
            "streamSid",
            "callSid",
            "payload",
            "track",
            "digit",
            "name",
            "mediaFormat",
            "customParameters",
        ],
    )
)
def test_random_frames_raise_only_protocol_errors(frames: list[str | bytes]) -> None:
    feed_without_surprises(TwilioCodec(), frames)
    codec = TwilioCodec()
    codec.receive(START)
    feed_without_surprises(codec, frames)


@given(st.binary(max_size=400))
def test_audio_round_trips_through_the_codec(ulaw: bytes) -> None:
    codec = TwilioCodec()
    codec.receive(START)
    message = {"event": "media", "media": {"payload": base64.b64encode(ulaw).decode()}}
    received = codec.receive(json.dumps(message))
    if not ulaw:
        assert received == []
        return
    [audio] = received
    assert isinstance(audio, AudioIn)
    frames = codec.send(AudioOut("u", audio.pcm, audio.sample_rate))
    assert all(json.loads(f)["streamSid"] == "MZ1" for f in frames)
    echoed = b"".join(base64.b64decode(json.loads(f)["media"]["payload"]) for f in frames)
    assert echoed == ulaw.replace(b"\x7f", b"\xff")


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "streamSid": json_values,
            "callSid": json_values,
            "mediaFormat": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "encoding": json_values,
                        "sampleRate": json_values,
                        "channels": json_values,
                    },
                ),
            ),
            "customParameters": st.one_of(
                json_values, st.dictionaries(st.text(max_size=20), json_values)
            ),
        },
    )
)
def test_random_starts_raise_only_protocol_errors(start: dict[str, Any]) -> None:
    feed_without_surprises(TwilioCodec(), [json.dumps({"event": "start", "start": start})])
