"""Attackers and a victim for the guard tests and bench/bench_attacks.py.

The victim is a browser call on /ws that asks for a long reply and records when each piece of
reply audio arrives: the largest gap between pieces is what a caller hears as a stall. The
prober fetches /health in a loop and records each latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import numpy as np
import trio
from trio_websocket import ConnectionClosed

from hana_voice.audio import mulaw
from tests.audio.signals import to_pcm, voiced
from tests.wsclient import connect

#: The victim's reply: 300 characters of a fake TTS at 20 ms a character, 6 s of audio.
VICTIM_TEXT = "مرحبا " * 50


def loud_audio(seconds: float, rate: int) -> bytes:
    """Voice-like audio the VAD takes as speech throughout (so the recogniser is fed)."""
    return to_pcm(np.tile(voiced(1.0, rate), int(seconds) + 1)[: int(seconds * rate)])


@dataclass
class Gaps:
    """Arrival times of a victim's reply audio."""

    arrivals: list[float] = field(default_factory=list)
    ended: bool = False

    @property
    def max_gap(self) -> float:
        steps = np.diff(self.arrivals) if len(self.arrivals) > 1 else np.array([0.0])
        return float(steps.max())


async def victim(ws_url: str, gaps: Gaps, started: trio.Event) -> None:
    async with connect(ws_url + "/ws") as client:
        await client.send_json({"type": "start"})
        await client.until("ready")
        await client.send_json({"type": "say", "text": VICTIM_TEXT, "id": "v1"})
        await client.until("audio.start")
        started.set()
        while True:
            frame = await client.receive()
            if isinstance(frame, bytes):
                gaps.arrivals.append(time.perf_counter())
            elif '"audio.end"' in frame:
                gaps.ended = True
                return


async def probe_health(http_url: str, latencies: list[float], stop: trio.Event) -> None:
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            response = await http.get("/health")
            latencies.append(time.perf_counter() - t0)
            assert response.status_code in (200, 503)
            await trio.sleep(0.02)


async def huge_frames(
    ws_url: str, frame_bytes: int, count: int, *, mulaw_8k: bool = False, path: str = "/ws"
) -> list[str]:
    """One client sending ``count`` binary frames of ``frame_bytes`` of loud audio: 16 kHz
    PCM, or 8 kHz mu-law (4 MiB of it is nine minutes, the attack of issue 11)."""
    if mulaw_8k:
        audio = mulaw.encode(loud_audio(frame_bytes / 8000 + 1, 8000))[:frame_bytes]
        start = {"type": "start", "sample_rate": 8000, "encoding": "mulaw"}
    else:
        audio = loud_audio(frame_bytes / 32000 + 1, 16000)[: frame_bytes - frame_bytes % 2]
        start = {"type": "start", "sample_rate": 16000}
    codes: list[str] = []
    try:
        async with connect(ws_url + path) as client:
            await client.send_json(start)
            for _ in range(count):
                await client.send(audio)
            with trio.move_on_after(0.5):
                while True:
                    message = await client.next_json()
                    if message.get("type") == "error":
                        codes.append(str(message.get("code")))
    except ConnectionClosed:
        pass
    return codes
