"""/health latency and another caller's reply-audio gaps during each attack of issue 11.

Run: .venv/bin/python bench/bench_attacks.py [--seconds 6] [--server-root DIR]

The server runs as a subprocess (``python -m hana_voice serve``, espeak TTS, no STT model,
MAX_CONCURRENT_SESSIONS=10). A *prober* runs in a second subprocess: it polls /health back to
back and holds a victim call on /ws that asks for a long reply and records when each piece of
reply audio arrives (paced in real time: a gap is a stall the caller hears). The attacks run
from this process, one at a time, each for ``--seconds``:

- idle: nothing (the baseline);
- burst: bursts of 100 WebSocket connections at once against the cap of 10, back to back
  (the victim holds one slot);
- huge-frames: one client sending 20 frames of 4 MiB (8 kHz mu-law, nine minutes each);
- no-credentials: 10 Maqsam sockets without credentials sending junk before session.setup;
- slow-handshakes: 50 connections trickling their HTTP request a byte every 200 ms;
- junk-flood: one authenticated Maqsam socket sending junk frames as fast as it can.

``--server-root`` runs another checkout's ``hana_voice`` (the code before a change) with this
bench, for before/after figures. Prints one line per attack: /health p50/p99/max and the
victim's largest reply-audio gap.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import socket
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
MAQSAM_TOKEN = "bench-maqsam-token-0123456789"
CAPACITY = 10
VICTIM_TEXT = "مرحبا بك، هذه مكالمة متابعة من المستشفى. " * 20


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else math.nan


@contextmanager
def server(root: Path | None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATA_DIR": tmp,
            "MODELS_DIR": str(Path(tmp) / "models"),
            "VOICE_SERVICE_SECRET": SECRET,
            "MAQSAM_TOKEN": MAQSAM_TOKEN,
            "TTS_ENGINE": "espeak",
            "RATE_LIMIT_PER_MINUTE": "0",
            "MAX_CONCURRENT_SESSIONS": str(CAPACITY),
            "MAX_TTS_CHARS": "2000",
            # One attacker address here; in production each would have its own.
            "MAX_HANDSHAKES_PER_ADDRESS": "0",
            "MAX_PENDING_PER_ADDRESS": "0",
            "LOG_LEVEL": "WARNING",
        }
        cwd = ROOT
        if root is not None:
            env["PYTHONPATH"] = str(root)
            cwd = root
        process = subprocess.Popen(
            [sys.executable, "-m", "hana_voice", "serve"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            process.wait(timeout=60)


async def wait_ready(url: str) -> None:
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            while True:
                try:
                    body = (await http.get("/health")).json()
                    if "espeak" in json.dumps(body.get("engines", {})):
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                await trio.sleep(0.2)


# ------------------------------------------------------------------ the prober process


async def probe(url: str, seconds: float) -> dict[str, float]:
    health: list[float] = []
    arrivals: list[float] = []
    ws_url = url.replace("http://", "ws://") + "/ws"
    stop = trio.Event()

    async def victim(task_status: trio.TaskStatus[None]) -> None:
        async with open_websocket_url(ws_url) as ws:
            await ws.get_message()  # ready
            await ws.send_message(json.dumps({"type": "start"}))
            await ws.send_message(json.dumps({"type": "say", "text": VICTIM_TEXT, "id": "v"}))
            started = False
            while not stop.is_set():
                frame = await ws.get_message()
                if isinstance(frame, bytes):
                    arrivals.append(time.perf_counter())
                    if not started:
                        started = True
                        task_status.started()

    async def prober() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                await http.get("/health")
                health.append(time.perf_counter() - t0)
                await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        await nursery.start(victim)
        print("victim-playing", flush=True)
        nursery.start_soon(prober)
        await trio.sleep(seconds)
        stop.set()
        nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return {
        "health_n": len(health),
        "health_p50_ms": 1e3 * percentile(health, 50),
        "health_p99_ms": 1e3 * percentile(health, 99),
        "health_max_ms": 1e3 * max(health, default=0.0),
        "gap_max_ms": 1e3 * max(gaps, default=0.0),
        "audio_frames": len(arrivals),
    }


# ------------------------------------------------------------------ the attacks


async def burst(url: str, seconds: float) -> None:
    """Bursts of 100 connections at once, one after another for the whole window: every
    /health sample then falls inside a burst (the victim holds one of the 10 slots)."""
    ws_url = url.replace("http://", "ws://") + "/ws"

    async def one() -> None:
        try:
            async with open_websocket_url(ws_url) as ws:
                await ws.get_message()
                await trio.sleep(0.5)  # an admitted one holds its slot a moment
        except (ConnectionClosed, OSError):
            pass

    with trio.move_on_after(seconds):
        while True:
            with trio.move_on_after(5):
                async with trio.open_nursery() as nursery:
                    for _ in range(100):
                        nursery.start_soon(one)
            await trio.sleep(0.2)


async def huge_frames(url: str, seconds: float) -> None:
    ws_url = url.replace("http://", "ws://") + "/ws"
    frame = bytes(range(256)) * (4 * 1024 * 1024 // 256 - 16)
    with trio.move_on_after(seconds):
        try:
            async with open_websocket_url(ws_url, max_message_size=2**24) as ws:
                await ws.send_message(
                    json.dumps({"type": "start", "sample_rate": 8000, "encoding": "mulaw"})
                )
                for _ in range(20):
                    await ws.send_message(frame)
                await trio.sleep(seconds)
        except (ConnectionClosed, OSError):
            pass


JUNK = json.dumps({"type": "audio.input", "data": {"audio": "AAAA"}})


async def no_credentials(url: str, seconds: float) -> None:
    ws_url = url.replace("http://", "ws://") + "/ws/maqsam"

    async def one() -> None:
        try:
            async with open_websocket_url(ws_url) as ws:
                while True:
                    await ws.send_message(JUNK)
                    await trio.sleep(0.1)
        except (ConnectionClosed, OSError):
            pass

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(one)


async def slow_handshakes(url: str, seconds: float) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" * 5

    async def one() -> None:
        try:
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                for byte in request:
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.2)
        except (trio.BrokenResourceError, OSError):
            pass

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)


async def junk_flood(url: str, seconds: float) -> None:
    ws_url = url.replace("http://", "ws://") + "/ws/maqsam"
    with trio.move_on_after(seconds):
        try:
            async with open_websocket_url(
                ws_url, extra_headers=[(b"Auth", MAQSAM_TOKEN.encode())]
            ) as ws:
                while True:
                    await ws.send_message("not json")
        except (ConnectionClosed, OSError):
            pass


async def idle(url: str, seconds: float) -> None:
    await trio.sleep(seconds)


ATTACKS = {
    "idle": idle,
    "burst": burst,
    "huge-frames": huge_frames,
    "no-credentials": no_credentials,
    "slow-handshakes": slow_handshakes,
    "junk-flood": junk_flood,
}


def run_attack(url: str, name: str, seconds: float) -> dict[str, float]:
    prober = subprocess.Popen(
        [sys.executable, __file__, "--probe", url, "--seconds", str(seconds + 1)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert prober.stdout is not None
    line = prober.stdout.readline()  # the victim's reply is playing
    assert line.strip() == "victim-playing", line
    trio.run(ATTACKS[name], url, seconds)
    out, _ = prober.communicate(timeout=120)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--server-root", type=Path, default=None)
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(trio.run(probe, args.probe, args.seconds)), flush=True)
        return 0
    for name in args.attacks.split(","):
        # A fresh server per attack: one attack's leftovers must not colour the next.
        with server(args.server_root) as (url, _):
            trio.run(wait_ready, url)
            r = run_attack(url, name, args.seconds)
        print(
            f"{name:16s} /health n={r['health_n']:.0f} p50={r['health_p50_ms']:.1f} ms "
            f"p99={r['health_p99_ms']:.1f} ms max={r['health_max_ms']:.1f} ms; "
            f"victim reply-audio max gap={r['gap_max_ms']:.0f} ms "
            f"({r['audio_frames']:.0f} frames)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
