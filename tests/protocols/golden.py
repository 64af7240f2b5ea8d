"""Replays the golden scenarios of tests/fixtures/protocols/<codec>.json through a codec.

A scenario is a list of steps run in order on one codec instance, because codecs keep state
(set-up seen, streamSid, ready sent). A step is one of:

* ``{"in": FRAME, "events": [EVENT...]}``: ``receive(FRAME)`` returns exactly these events;
* ``{"out": EVENT, "frames": [FRAME...]}``: ``send(EVENT)`` returns exactly these frames;
* ``{"in": FRAME, "error": ERROR}`` or ``{"out": EVENT, "error": ERROR}``: it raises a
  ProtocolError with ERROR's ``code``, ``fatal`` and (when given) ``close_code``.

A FRAME is ``{"json": value}`` (a text frame holding that JSON), ``{"text": str}`` (that exact
text frame) or ``{"binary_b64": str}`` (a binary frame). An EVENT is ``{"kind": class name,
...fields}``, with bytes fields written as ``<field>_b64``. Expected PCM of mu-law payloads was
produced with the stdlib ``audioop`` reference, not with the code under test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hana_voice import events
from hana_voice.errors import ProtocolError
from hana_voice.protocols import base

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "protocols"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def frame_from(spec: dict[str, Any]) -> str | bytes:
    if "json" in spec:
        return json.dumps(spec["json"], ensure_ascii=False)
    if "text" in spec:
        return str(spec["text"])
    return base64.b64decode(spec["binary_b64"])


def event_from(spec: dict[str, Any]) -> Any:
    fields = {k: v for k, v in spec.items() if k != "kind"}
    for key in [k for k in fields if k.endswith("_b64")]:
        fields[key.removesuffix("_b64")] = base64.b64decode(fields.pop(key))
    if "transcript" in fields:
        fields["transcript"] = events.Transcript(**fields["transcript"])
    cls = getattr(events, spec["kind"], None) or getattr(base, spec["kind"])
    return cls(**fields)


def assert_frames_equal(actual: list[str | bytes], expected: list[dict[str, Any]]) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected, strict=True):
        if "json" in want:
            assert isinstance(got, str)
            assert json.loads(got) == want["json"]
        elif "text" in want:
            assert got == want["text"]
        else:
            assert got == base64.b64decode(want["binary_b64"])


def run_scenario(codec: Any, steps: list[dict[str, Any]]) -> None:
    for number, step in enumerate(steps):
        call: Callable[[], list[Any]]
        if "in" in step:
            frame = frame_from(step["in"])

            def call(frame: str | bytes = frame) -> list[Any]:
                return list(codec.receive(frame))
        else:
            event = event_from(step["out"])

            def call(event: Any = event) -> list[Any]:
                return list(codec.send(event))

        if "error" in step:
            with pytest.raises(ProtocolError) as caught:
                call()
            want = step["error"]
            assert caught.value.code == want["code"], (number, str(caught.value))
            assert caught.value.fatal is want["fatal"], (number, str(caught.value))
            if "close_code" in want:
                assert caught.value.close_code == want["close_code"]
        elif "in" in step:
            assert call() == [event_from(e) for e in step["events"]], number
        else:
            assert_frames_equal(call(), step["frames"])


def scenario_ids(scenarios: list[dict[str, Any]]) -> list[str]:
    return [s["name"] for s in scenarios]
