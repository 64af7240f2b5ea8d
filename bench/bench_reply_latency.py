"""Reply latency on /ws/healthcare-questionnaire: end of caller speech to first reply audio.

Run: .venv/bin/python bench/bench_reply_latency.py [--samples 30]

A real server (Hypercorn's trio worker on loopback) with the REAL espeak-ng engine and the
prompt cache warmed before measuring; the recogniser is the fake one (it "hears" a script and
ends an utterance by energy), so results do not depend on a model's decoding speed. Each
sample is a new call: the caller streams speech-like audio in 20 ms frames in real time over
the greeting (barging in), saying "yes" to consent; the reply is the first question.

Printed, each with p50/p95/p99 over the samples:

- detection: end of the voiced audio to the final transcript (the VAD hangover plus the
  recogniser's own end-of-utterance silence: the end-of-utterance detection delay);
- reply: final transcript to the first byte of the question's audio (target < 300 ms);
- total: end of speech to the first reply byte.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from hana_voice.app import create_app
from hana_voice.engines.espeak_tts import load_espeak
from hana_voice.engines.fake import FakeSpeechToText
from hana_voice.engines.manager import Loaders
from hana_voice.server import hypercorn_config, serve
from hana_voice.services import Services, services_of
from hana_voice.settings import Settings
from hana_voice.wiring import prompt_texts

RATE = 16000
FRAME_MS = 20
LEAD_S, VOICE_S, TAIL_S = 0.5, 0.6, 1.0
PATH = "/ws/healthcare-questionnaire"


def speech_like(rate: int = RATE) -> bytes:
    """Quiet line noise, 0.6 s of a voiced harmonic sound, then quiet: one utterance."""
    rng = np.random.default_rng(7)
    total = int(rate * (LEAD_S + VOICE_S + TAIL_S))
    signal = rng.normal(0, 10 ** (-60 / 20), total)
    t = np.arange(int(rate * VOICE_S)) / rate
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    envelope = np.minimum(1, np.minimum(t, VOICE_S - t) / 0.03)
    start = int(rate * LEAD_S)
    signal[start : start + len(t)] += 0.3 * voiced * envelope / np.abs(voiced).max()
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16).tobytes()


def bench_settings(root: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=root / "data",
        models_dir=root / "models",
        vosk_model_path=root / "models" / "absent",
        voice_service_secret="bench-secret-0123456789-abcdefghijklmnop",
        rate_limit_per_minute=0,
        tts_engine="espeak",
        warm_prompt_cache=False,  # warmed explicitly below, so the bench knows when
        log_level="WARNING",
    ).with_overrides(**changes)


def loaders(stt: FakeSpeechToText) -> Loaders:
    return Loaders(
        stt=cast(Any, lambda s: stt),
        espeak=lambda s: load_espeak(s.espeak_voice),
        xtts_present=lambda s: False,
    )


@asynccontextmanager
async def running_server(
    settings: Settings, stt: FakeSpeechToText
) -> AsyncIterator[tuple[str, Services]]:
    """A real server with espeak and the fake recogniser, its prompt cache warmed."""
    app = create_app(settings, loaders=loaders(stt))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(
                app,
                hypercorn_config(settings, bind="127.0.0.1:0"),
                trigger=stop.wait,
                task_status=task_status,
            )
        )
        services = services_of(app)
        with trio.fail_after(30):
            await services.engines.loaded.wait()
        tts = services.engines.require_tts()
        texts = [t for q in services.extras["questionnaires"].values() for t in prompt_texts(q)]
        await services.extras["prompt_cache"].warm(tts, services.runner, dict.fromkeys(texts))
        try:
            yield binds[0].replace("http://", "ws://"), services
        finally:
            stop.set()


async def receive_json(ws: WebSocketConnection, kind: str) -> dict[str, Any]:
    while True:
        frame = await ws.get_message()
        if isinstance(frame, str):
            message: dict[str, Any] = json.loads(frame)
            if message.get("type") == kind:
                return message


async def one_sample(url: str, audio: bytes) -> tuple[float, float]:
    """(detection, reply) seconds of one call; see the module docstring."""
    async with open_websocket_url(url + PATH, max_message_size=1 << 25) as ws:
        await ws.send_message(json.dumps({"type": "start", "sample_rate": RATE}))
        await receive_json(ws, "audio.start")
        step = 2 * RATE * FRAME_MS // 1000
        speech_end: float | None = None
        final_at: float | None = None
        first_byte: float | None = None

        async def talk() -> None:
            nonlocal speech_end
            t0 = trio.current_time()
            for index, start in enumerate(range(0, len(audio), step)):
                await ws.send_message(audio[start : start + step])
                if speech_end is None and (start + step) / 2 / RATE >= LEAD_S + VOICE_S:
                    speech_end = trio.current_time()
                await trio.sleep_until(t0 + (index + 1) * FRAME_MS / 1000)
            while True:  # a live microphone keeps sending quiet frames
                await ws.send_message(bytes(step))
                await trio.sleep(FRAME_MS / 1000)

        async def listen() -> None:
            nonlocal final_at, first_byte
            question_started = False
            while first_byte is None:
                frame = await ws.get_message()
                if isinstance(frame, bytes):
                    if question_started:
                        first_byte = trio.current_time()
                    continue
                message = json.loads(frame)
                if message["type"] == "transcript" and message["final"]:
                    final_at = trio.current_time()
                elif message["type"] == "audio.start" and final_at is not None:
                    question_started = True

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(talk)
                await listen()
                nursery.cancel_scope.cancel()
        with contextlib.suppress(ConnectionClosed):
            await ws.send_message(json.dumps({"type": "stop"}))
    assert speech_end is not None and final_at is not None and first_byte is not None
    return final_at - speech_end, first_byte - final_at


def percentiles(values: Sequence[float]) -> str:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000

    return (
        f"p50 {pick(0.50):7.1f} ms  p95 {pick(0.95):7.1f} ms  p99 {pick(0.99):7.1f} ms"
        f"  (mean {statistics.fmean(ordered) * 1000:.1f}, n={len(ordered)})"
    )


async def main(samples: int) -> None:
    stt = FakeSpeechToText(["نعم"] * (samples + 5))
    audio = speech_like()
    with tempfile.TemporaryDirectory() as tmp:
        async with running_server(bench_settings(Path(tmp)), stt) as (url, services):
            detections, replies = [], []
            await one_sample(url, audio)  # warm-up: first connection, imports, threads
            for _ in range(samples):
                detection, reply = await one_sample(url, audio)
                detections.append(detection)
                replies.append(reply)
            engine = services.engines.require_tts().name
    totals = [d + r for d, r in zip(detections, replies, strict=True)]
    print(f"reply latency on {PATH}: TTS {engine} (prompt cache warm), fake recogniser")
    print(f"  detection (end of speech -> final transcript): {percentiles(detections)}")
    print(f"  reply     (final transcript -> first audio):  {percentiles(replies)}")
    print(f"  total     (end of speech -> first audio):     {percentiles(totals)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    sys.exit(trio.run(main, args.samples))
