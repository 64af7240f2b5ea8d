"""Load against the session cap: N clients at once on a real server with the espeak engine.

Run: .venv/bin/python bench/bench_load.py [--clients 300] [--capacity 30] [--seconds 20]

The server runs as a subprocess (``hana-voice serve``, TTS_ENGINE=espeak, no STT model), so the
load generator does not share its event loop. Every client connects to
/ws/healthcare-questionnaire at once; admitted clients send ``start`` and hear the greeting
(espeak through the prompt cache), then hold their session until every client has been
answered. Meanwhile /health is polled back to back. Prints the /health latency under load
(target p99 < 50 ms), the connect latency (handshake to ``ready`` or to the refusal's close)
and the admitted/refused counts; exits 1 if the counts or the leak check are wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789-abcdefghijklmnop"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else math.nan


@contextmanager
def server_process(**env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``hana-voice serve`` on a free port with a temporary DATA_DIR; yields (url, process)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        full = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATA_DIR": tmp,
            "MODELS_DIR": str(Path(tmp) / "models"),
            "VOICE_SERVICE_SECRET": SECRET,
            "TTS_ENGINE": "espeak",
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "hana-voice"), "serve"],
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            process.wait(timeout=60)


async def wait_ready(url: str, timeout: float = 60) -> dict[str, object]:
    """Until /health says the TTS is loaded and the prompt cache has been warmed."""
    with trio.fail_after(timeout):
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            while True:
                try:
                    response = await http.get("/health")
                    body: dict[str, object] = response.json()
                    warm = body.get("prompt_cache", {})
                    warmed = isinstance(warm, dict) and warm.get("state") in ("ready", "off")
                    if response.status_code == 200 and "espeak" in json.dumps(body) and warmed:
                        return body
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.2)


async def health_body(url: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        body: dict[str, object] = (await http.get("/health")).json()
        return body


async def run_load(url: str, clients: int, capacity: int) -> dict[str, object]:
    ws_url = url.replace("http://", "ws://") + "/ws/healthcare-questionnaire"
    connect_s: list[float] = []
    health_s: list[float] = []
    refusals: dict[str, int] = {}
    admitted = 0
    decided = trio.Event()
    leave = trio.Event()
    done = 0

    def note() -> None:
        nonlocal done
        done += 1
        if done == clients:
            decided.set()

    async def client() -> None:
        nonlocal admitted
        started = time.perf_counter()
        async with open_websocket_url(ws_url, max_message_size=2**24) as ws:
            try:
                first = json.loads(await ws.get_message())
            except ConnectionClosed as exc:
                connect_s.append(time.perf_counter() - started)
                key = f"{exc.reason.code} {exc.reason.reason}" if exc.reason else "no close frame"
                refusals[key] = refusals.get(key, 0) + 1
                note()
                return
            connect_s.append(time.perf_counter() - started)
            assert first["type"] == "ready", first
            admitted += 1
            note()
            await ws.send_message(json.dumps({"type": "start", "sample_rate": 16000}))
            while True:
                frame = await ws.get_message()
                if isinstance(frame, str) and json.loads(frame)["type"] == "audio.end":
                    break
            await leave.wait()

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            await http.get("/health")
            while not leave.is_set():
                started = time.perf_counter()
                response = await http.get("/health")
                health_s.append(time.perf_counter() - started)
                assert response.status_code == 200
                await trio.sleep(0.005)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe)
        await trio.sleep(0.2)
        for _ in range(clients):
            nursery.start_soon(client)
        await decided.wait()
        await trio.sleep(1.0)  # admitted calls play their greetings meanwhile
        leave.set()
    with trio.fail_after(30):
        while True:
            sessions = (await health_body(url))["sessions"]
            assert isinstance(sessions, dict)
            if sessions["active"] == 0:
                break
            await trio.sleep(0.1)
    return {
        "admitted": admitted,
        "refusals": refusals,
        "health_n": len(health_s),
        "health_p50_ms": 1e3 * percentile(health_s, 50),
        "health_p99_ms": 1e3 * percentile(health_s, 99),
        "health_max_ms": 1e3 * max(health_s, default=math.nan),
        "connect_p50_ms": 1e3 * percentile(connect_s, 50),
        "connect_p99_ms": 1e3 * percentile(connect_s, 99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with server_process(MAX_CONCURRENT_SESSIONS=str(args.capacity)) as (url, _):
        trio.run(wait_ready, url)
        ok = True
        for index in range(args.rounds):
            report = trio.run(run_load, url, args.clients, args.capacity)
            expected = {
                f"1013 server busy: {args.capacity}/{args.capacity} sessions": args.clients
                - args.capacity
            }
            good = report["admitted"] == args.capacity and report["refusals"] == expected
            ok = ok and good
            print(
                f"round {index + 1}: clients={args.clients} capacity={args.capacity} "
                f"admitted={report['admitted']} refused={sum(report['refusals'].values())}"  # type: ignore[attr-defined]  # a dict
                f" {'OK' if good else 'WRONG ' + str(report['refusals'])}\n"
                f"  /health under load: n={report['health_n']} "
                f"p50={report['health_p50_ms']:.1f} ms p99={report['health_p99_ms']:.1f} ms "
                f"max={report['health_max_ms']:.1f} ms (target p99 < 50 ms)\n"
                f"  connect (to ready or refusal): p50={report['connect_p50_ms']:.1f} ms "
                f"p99={report['connect_p99_ms']:.1f} ms"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
