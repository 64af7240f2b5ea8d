"""Cost of the wire codecs per 20 ms audio frame, as a share of one core.

Run: .venv/bin/python bench/bench_protocols.py
Prints microseconds per frame (median and p99 of 2000 frames) for decoding caller audio and
encoding reply audio, and how many concurrent calls one core could carry for that work alone.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable

from hana_voice.events import AudioOut
from hana_voice.protocols import BrowserCodec, MaqsamCodec, TwilioCodec

FRAMES = 2000
FRAME_MS = 20


def measure(label: str, step: Callable[[], object]) -> None:
    timings = []
    for _ in range(FRAMES):
        start = time.perf_counter()
        step()
        timings.append((time.perf_counter() - start) * 1e6)
    timings.sort()
    median = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99)]
    calls = FRAME_MS * 1000 / median
    print(f"{label:<40} median {median:7.1f} us  p99 {p99:7.1f} us  ~{calls:6.0f} calls/core")


def main() -> None:
    ulaw = bytes(range(160))
    pcm8k = bytes(320)
    maqsam = MaqsamCodec()
    maqsam.receive(json.dumps({"type": "session.setup", "data": {"context": {"id": "b"}}}))
    frame = json.dumps({"type": "audio.input", "data": {"audio": base64.b64encode(ulaw).decode()}})
    measure("maqsam audio.input -> AudioIn", lambda: maqsam.receive(frame))
    measure("maqsam AudioOut -> response.stream", lambda: maqsam.send(AudioOut("u", pcm8k, 8000)))

    twilio = TwilioCodec()
    twilio.receive(json.dumps({"event": "start", "start": {"streamSid": "MZ1"}}))
    media = json.dumps({"event": "media", "media": {"payload": base64.b64encode(ulaw).decode()}})
    measure("twilio media -> AudioIn", lambda: twilio.receive(media))
    measure("twilio AudioOut -> media", lambda: twilio.send(AudioOut("u", pcm8k, 8000)))

    browser = BrowserCodec()
    pcm16k = bytes(640)
    browser.receive(json.dumps({"type": "start"}))
    measure("browser binary pcm -> AudioIn", lambda: browser.receive(pcm16k))


if __name__ == "__main__":
    main()
