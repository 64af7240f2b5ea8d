"""Soak: questionnaire calls back to back, K at a time, for a bounded time; server RSS growth.

Run: .venv/bin/python bench/bench_soak.py [--seconds 60] [--concurrency 4]

The server is a subprocess (``hana-voice serve``, TTS_ENGINE=espeak with the prompt cache, no
STT model: answers are keyed). Each call: start, greeting, consent, six keypad answers, one
typed answer, result, close. The server's VmRSS is sampled from /proc/<pid>/status once a
second; growth is measured from the end of the warm-up (the first quarter of the run) to the
end. Target: under 5 %. Also checks that no session is left and every call completed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import trio
from bench_load import percentile, server_process, wait_ready
from trio_websocket import WebSocketConnection, open_websocket_url

KEYS = (["1"], ["1"], ["2"], ["3"], ["2"], ["1"], ["1"])  # consent, then six answers


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def until(ws: WebSocketConnection, kind: str) -> dict[str, object]:
    while True:
        frame = await ws.get_message()
        if isinstance(frame, str):
            message: dict[str, object] = json.loads(frame)
            if message["type"] == kind:
                return message


async def one_call(ws_url: str) -> float:
    started = time.perf_counter()
    with trio.fail_after(120):
        async with open_websocket_url(ws_url, max_message_size=2**24) as ws:
            await until(ws, "ready")
            await ws.send_message(json.dumps({"type": "start", "sample_rate": 16000}))
            for keys in KEYS:
                await until(ws, "audio.end")
                for key in keys:
                    await ws.send_message(json.dumps({"type": "dtmf", "digit": key}))
            await until(ws, "audio.end")
            await ws.send_message(json.dumps({"type": "text", "text": "لا شيء"}))
            result = await until(ws, "result")
            outcome = result["result"]
            assert isinstance(outcome, dict) and outcome["outcome"] == "completed", outcome
            await until(ws, "end")
    return time.perf_counter() - started


async def soak(url: str, pid: int, seconds: float, concurrency: int) -> int:
    ws_url = url.replace("http://", "ws://") + "/ws/healthcare-questionnaire"
    durations: list[float] = []
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    stop_at = start + seconds

    async def worker() -> None:
        while time.monotonic() < stop_at:
            durations.append(await one_call(ws_url))

    async def sampler() -> None:
        while time.monotonic() < stop_at:
            samples.append((time.monotonic() - start, rss_kib(pid)))
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sampler)
        for _ in range(concurrency):
            nursery.start_soon(worker)
    samples.append((time.monotonic() - start, rss_kib(pid)))
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        with trio.fail_after(30):
            while (await http.get("/health")).json()["sessions"]["active"]:
                await trio.sleep(0.1)
    warm = [kib for at, kib in samples if at >= seconds / 4]
    base, end = warm[0], warm[-1]
    growth = 100 * (end - base) / base
    print(
        f"calls={len(durations)} in {seconds:g} s, concurrency={concurrency}; "
        f"call duration p50={percentile(durations, 50):.2f} s p99={percentile(durations, 99):.2f} s"
    )
    print(
        f"server RSS: start={samples[0][1] / 1024:.1f} MiB after-warm-up={base / 1024:.1f} MiB "
        f"end={end / 1024:.1f} MiB peak={max(k for _, k in samples) / 1024:.1f} MiB "
        f"growth after warm-up={growth:+.2f} % (target < 5 %)"
    )
    return 0 if growth < 5 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with server_process(MAX_CONCURRENT_SESSIONS=str(max(10, args.concurrency))) as (url, proc):
        trio.run(wait_ready, url)
        return trio.run(soak, url, proc.pid, args.seconds, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
