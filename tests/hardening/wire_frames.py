"""Seeded hostile WebSocket frames for the wire fuzzer: random bytes and text, JSON in each
protocol's vocabulary with fields of the wrong shape, truncated base64, huge numbers, deep
nesting, oversized frames, and now and then a well-formed set-up so the call really runs."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from hana_voice.calls.endpoints import Endpoint
from hana_voice.protocols.browser import MESSAGE_TYPES

MAQSAM_TYPES = ("session.setup", "audio.input", "call.mark", "call.dtmf", "call.hangup")
TWILIO_EVENTS = ("connected", "start", "media", "dtmf", "mark", "stop")
FIELDS = (
    "digit", "text", "id", "sample_rate", "encoding", "output_encoding", "context",
    "questionnaire_id", "call_id", "data", "audio", "label", "apiKey", "streamSid", "start",
    "media", "payload", "track", "mediaFormat", "dtmf", "mark", "name", "custom",
)  # fmt: skip


class FrameMaker:
    """Frames for one endpoint, from one seeded generator."""

    def __init__(self, endpoint: Endpoint, seed: int, max_message_bytes: int) -> None:
        self.endpoint = endpoint
        self.rng = random.Random(seed)
        self.too_big = max_message_bytes + 1024
        self.types: tuple[str, ...]
        if endpoint.kind == "maqsam":
            self.type_key, self.types = "type", MAQSAM_TYPES
        elif endpoint.kind == "telephony":
            self.type_key, self.types = "event", TWILIO_EVENTS
        else:
            self.type_key, self.types = "type", MESSAGE_TYPES

    def frame(self) -> str | bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12:
            return rng.randbytes(rng.choice([0, 1, 3, 320, 641, 4000]))
        if roll < 0.22:
            return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x600, 0x6FF)]))
                           for _ in range(rng.randrange(0, 80)))  # fmt: skip
        if roll < 0.27:
            return "tts:" + rng.choice(["", " ", "مرحبا", "x" * rng.randrange(1, 3000)])
        if roll < 0.32:
            depth = rng.choice([50, 50, 2000, 2000, 40_000])  # 40_000 deep is over 64 KiB
            return '{"' + self.type_key + '":' + "[" * depth + "]" * depth + "}"
        if roll < 0.325:
            return b"\x00" * self.too_big if rng.random() < 0.5 else "x" * self.too_big
        if roll < 0.45:
            return json.dumps(self.setup())
        message: dict[str, Any] = {self.type_key: self.kind()}
        for name in rng.sample(FIELDS, rng.randrange(0, 5)):
            message[name] = self.value(3)
        text = json.dumps(message, ensure_ascii=False)
        if rng.random() < 0.1:
            text = text[: rng.randrange(0, len(text) + 1)]  # truncated mid-message
        return text

    def kind(self) -> object:
        rng = self.rng
        return rng.choice([*self.types, *self.types, "", "START", None, 7, ["start"], "x" * 500])

    def value(self, depth: int) -> object:
        rng = self.rng
        pick = rng.randrange(11 if depth else 8)
        if pick == 0:
            return rng.choice([None, True, False])
        if pick == 1:
            return rng.choice([0, -1, 1, 8000, 16000, 2**63, -(2**70), 10**400])
        if pick == 2:
            return rng.choice([0.5, -0.0, 1e308, 1e-320])
        if pick == 3:
            return rng.choice(list("0123456789*#ABCDx")) * rng.choice([1, 1, 2])
        if pick == 4:
            return self.base64()
        if pick == 5:
            return "".join(rng.choice("abcنعم لا ") for _ in range(rng.randrange(0, 40)))
        if pick in (6, 7):
            return rng.choice(["pcm_s16le", "mulaw", "audio/x-mulaw", "webm", ""])
        if pick == 8:
            return [self.value(depth - 1) for _ in range(rng.randrange(0, 4))]
        return {rng.choice(FIELDS): self.value(depth - 1) for _ in range(rng.randrange(0, 4))}

    def base64(self) -> str:
        rng = self.rng
        encoded = base64.b64encode(rng.randbytes(rng.choice([0, 1, 159, 160, 321]))).decode()
        cut = rng.random()
        if cut < 0.3:
            return encoded[: rng.randrange(0, len(encoded) + 1)]
        if cut < 0.4:
            return encoded + "!@"
        return encoded

    def setup(self) -> dict[str, Any]:
        """A well-formed set-up for the endpoint, so later frames reach a live call."""
        rng = self.rng
        if self.endpoint.kind == "maqsam":
            return {
                "type": "session.setup",
                "apiKey": rng.choice([None, "wrong-key"]),
                "data": {"context": {"id": rng.randrange(10**6), "custom": {}}},
            }
        if self.endpoint.kind == "telephony":
            return {
                "event": "start",
                "start": {
                    "streamSid": "MZ" + str(rng.randrange(10**6)),
                    "callSid": "CA1",
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        return {"type": "start", "sample_rate": rng.choice([8000, 16000, 44100, 7])}
