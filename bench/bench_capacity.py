"""Capacity: how many concurrent calls streaming real-time audio 2 cores hold (p95 < 1 s).

Run: .venv/bin/python bench/bench_capacity.py [--start 4] [--factor 1.5] [--step-seconds 12]
     [--budget 110]

The server runs in a child process (this script with --serve) with the REAL espeak engine,
the prompt cache warmed, and the fake recogniser (energy-based; Vosk's decoding cost is not
included, see bench_stt.py for it). The parent runs N callers on /ws/healthcare-questionnaire:
each streams speech-like audio in 20 ms frames in real time without pause (0.5 s noise, 0.6 s
voice, 1 s quiet, repeated), every utterance gets a reply (the next question, a repeat, or a
barge-in cut followed by one), and a call that ends is redialled. Reply latency is end of the
voiced audio to the first byte of the next prompt's audio (VAD hangover included). N grows by
``--factor`` until p95 passes 1 s or the time budget runs out. The parent shares the 2 cores
with the server, so the figure is a lower bound. Memory: the server's RSS at each step minus
its idle RSS, divided by N.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reply_latency import (  # the sibling script, found via sys.path
    FRAME_MS,
    LEAD_S,
    PATH,
    RATE,
    VOICE_S,
    bench_settings,
    running_server,
    speech_like,
)

from hana_voice.engines.fake import (
    FakeRecognizer,
    FakeSpeechToText,
)

MISSED = math.inf  # no reply within REPLY_WAIT counts as infinitely late
REPLY_WAIT = 5.0


#: What every caller says: consent, then the first two questions (yes, no). The third answer
#: would be a pain rating; the caller hangs up and dials again instead, so every utterance
#: has a reply and none triggers an escalation (whose closing may not be interrupted).
ANSWERS = ("نعم", "نعم", "لا")


class PerCallScript(FakeSpeechToText):
    """A fake recogniser engine whose every call hears ANSWERS from the start."""

    def create_recognizer(
        self, sample_rate: int, phrases: Sequence[str] | None = None
    ) -> FakeRecognizer:
        own = FakeSpeechToText(ANSWERS)
        recognizer = FakeRecognizer(own, sample_rate, None if phrases is None else [*phrases])
        return recognizer  # not kept: a long run creates hundreds of thousands


async def serve_child() -> None:
    stt = PerCallScript()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), max_concurrent_sessions=10_000)
        async with running_server(settings, stt) as (url, _):
            print(url, flush=True)
            await trio.sleep_forever()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Caller:
    """One simulated caller; ``latencies`` gets one value per utterance it finished."""

    def __init__(self, url: str, audio: bytes, latencies: list[float]) -> None:
        self.url, self.audio, self.latencies = url, audio, latencies

    async def run(self) -> None:
        while True:
            await self._call()  # returns when the questionnaire ended: dial again

    async def _call(self) -> None:
        async with open_websocket_url(self.url + PATH, max_message_size=1 << 25) as ws:
            await ws.send_message(json.dumps({"type": "start", "sample_rate": RATE}))
            pending: list[float] = []  # ends of speech still waiting for a reply
            prompt_started = False
            answered = 0

            async def talk() -> None:
                with contextlib.suppress(ConnectionClosed):
                    await talk_on()

            async def talk_on() -> None:
                step = 2 * RATE * FRAME_MS // 1000
                speech_end = int((LEAD_S + VOICE_S) * RATE) * 2
                t0, index = trio.current_time(), 0
                while True:
                    for start in range(0, len(self.audio), step):
                        await ws.send_message(self.audio[start : start + step])
                        if start < speech_end <= start + step:
                            pending.append(trio.current_time())
                        index += 1
                        await trio.sleep_until(t0 + index * FRAME_MS / 1000)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(talk)
                while True:
                    try:
                        frame = await ws.get_message()
                    except ConnectionClosed:
                        nursery.cancel_scope.cancel()
                        return
                    now = trio.current_time()
                    while pending and now - pending[0] > REPLY_WAIT:
                        pending.pop(0)
                        self.latencies.append(MISSED)
                    if isinstance(frame, str):
                        prompt_started = json.loads(frame).get("type") == "audio.start"
                    elif prompt_started:
                        prompt_started = False
                        if pending:
                            self.latencies.append(now - pending.pop())
                            pending.clear()
                            answered += 1
                            if answered == len(ANSWERS):
                                nursery.cancel_scope.cancel()
                                return


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


async def run_step(url: str, n: int, seconds: float, audio: bytes) -> list[float]:
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(Caller(url, audio, latencies).run)
            await trio.sleep(2.1 / n)  # spread the callers' utterances over the cycle
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    return latencies


async def parent(start: int, factor: float, step_seconds: float, budget: float) -> None:
    # Started once, before any call runs: a blocking start costs the event loop nothing here.
    child = subprocess.Popen(  # noqa: ASYNC220  # see the line above
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    began = time.monotonic()
    try:
        assert child.stdout is not None
        url = (await trio.to_thread.run_sync(child.stdout.readline)).strip()
        idle = rss_mb(child.pid)
        audio = speech_like()
        print(f"server pid {child.pid}, idle RSS {idle:.0f} MB, {os.cpu_count()} CPUs")
        print(
            f"{'calls':>6} {'replies':>8} {'missed':>7} {'p50 ms':>8} {'p95 ms':>8} {'MB/call':>8}"
        )
        n, best = start, 0
        while time.monotonic() - began + step_seconds + 3 < budget:
            latencies = await run_step(url, n, step_seconds, audio)
            peak = rss_mb(child.pid)
            done = sorted(latencies)
            missed = sum(1 for v in done if v == MISSED)
            tail = p95(done) if done else MISSED
            median = done[len(done) // 2] if done else MISSED
            print(
                f"{n:>6} {len(done):>8} {missed:>7} {median * 1000:>8.0f} {tail * 1000:>8.0f}"
                f" {(peak - idle) / n:>8.1f}"
            )
            if tail > 1.0:
                break
            best = n
            n = max(n + 1, round(n * factor))
        print(f"most concurrent calls with p95 reply latency under 1 s: {best}")
        print(f"run time {time.monotonic() - began:.0f} s")
    finally:
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=4)
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--step-seconds", type=float, default=12.0)
    parser.add_argument("--budget", type=float, default=110.0)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve_child)
    else:
        trio.run(parent, args.start, args.factor, args.step_seconds, args.budget)
