"""/health and WebSocket connect latency on loopback, idle and with the session cap reached.

Run: .venv/bin/python bench/bench_http.py [--requests 500] [--connects 200] [--sessions 10]

The server runs as a subprocess (``hana-voice serve``, espeak TTS, no STT model) so the client
does not share its event loop. Phases:

1. idle: /health back to back over one keep-alive connection; WebSocket connects to /ws
   (handshake until the ``ready`` message, then close);
2. busy: MAX_CONCURRENT_SESSIONS - 1 sessions held open on /ws (the measuring connection takes
   the last slot), then the same measurements.

Targets (issue 2): /health p99 < 10 ms, connect p99 < 50 ms (the guide asks 5 s and 2 s).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import AsyncExitStack

import httpx
import trio
from bench_load import percentile, server_process, wait_ready  # the sibling script
from trio_websocket import open_websocket_url


async def health_latencies(url: str, count: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await client.get("/health")
        for _ in range(count):
            start = time.perf_counter()
            response = await client.get("/health")
            out.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.status_code
    return out


async def connect_latencies(ws_url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        async with open_websocket_url(ws_url + "/ws") as ws:
            message = json.loads(await ws.get_message())
            out.append((time.perf_counter() - start) * 1000)
            assert message["type"] == "ready", message
    return out


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<28} n={len(values):<5} p50={percentile(values, 50):7.2f} ms  "
        f"p99={percentile(values, 99):7.2f} ms  max={max(values):7.2f} ms"
    )


async def run(url: str, requests: int, connects: int, sessions: int) -> None:
    ws_url = url.replace("http://", "ws://")
    print(summary("idle /health", await health_latencies(url, requests)))
    print(summary("idle ws connect", await connect_latencies(ws_url, connects)))
    async with AsyncExitStack() as stack:
        for _ in range(sessions - 1):
            ws = await stack.enter_async_context(open_websocket_url(ws_url + "/ws"))
            await ws.get_message()
        print(summary(f"/health, {sessions - 1} sessions", await health_latencies(url, requests)))
        print(
            summary(f"ws connect, {sessions - 1} open", await connect_latencies(ws_url, connects))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--connects", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()
    env = {"MAX_CONCURRENT_SESSIONS": str(args.sessions)}
    with server_process(**env) as (url, _process):
        trio.run(wait_ready, url)
        trio.run(run, url, args.requests, args.connects, args.sessions)


if __name__ == "__main__":
    main()
