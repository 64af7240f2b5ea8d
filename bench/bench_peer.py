"""Peer benchmark: this service against Pipecat under the same Twilio-style load.

    .venv/bin/python bench/bench_peer.py                       # installs Pipecat on first use
    .venv/bin/python bench/bench_peer.py --levels 16,32,48 --window 30 --rounds 2
    .venv/bin/python bench/bench_peer.py --targets hana --workers 2

Pipecat (``pipecat-ai`` 1.14.0 with FastAPI and uvicorn) is installed with pip into its own
virtual environment under ``$HANA_BENCH_CACHE`` (default ``~/.cache/hana-bench``), never into
the service's. Its server is bench/pipecat_server.py: Pipecat's FastAPI WebSocket transport
with its Twilio serializer, playing the keypad questionnaire's prompts.

The prompts are the same audio for both: one call is first made to this service and the
8 kHz mu-law of each prompt it plays (espeak-ng, served from the prompt cache) is recorded;
Pipecat's server plays those recordings. Then, per level N, each server in turn (alternating,
``--rounds`` times) gets N callers from bench/twilio_load.py for ``--window`` seconds.

Reported per run: server CPU (the process and its children, from /proc) per second of call
audio (20 ms per caller frame sent), prompt lateness p50/p99/max, and whether
the level was held in real time (p99 lateness <= 200 ms, no call failed, the callers' audio
went out at >= 95 % of real time). The largest N held
is reported per server.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The imports below need the sys.path lines: this file runs as a script.
from twilio_load import STREAM_SID, Stats, run_level

from tests.telephony.support import TELEPHONY_TOKEN, write_questionnaires

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PIPECAT_VERSION = "1.14.0"
HELD_P99 = 0.200


def cache_dir() -> Path:
    return Path(os.environ.get("HANA_BENCH_CACHE", Path.home() / ".cache" / "hana-bench"))


def pipecat_python() -> Path:
    """The Pipecat venv's interpreter; created on first use (pip, its own venv)."""
    venv = cache_dir() / "pipecat-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import pipecat, fastapi, uvicorn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = shutil.which("python3.11") or "python3"
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    packages = [f"pipecat-ai[websocket]=={PIPECAT_VERSION}", "fastapi", "uvicorn"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants (workers included)."""
    user, system = tree_cpu_split(pid)
    return user + system


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, tuple[float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) / TICKS, int(fields[12]) / TICKS)
    user = system = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        u, s = cpu.get(current, (0.0, 0.0))
        user, system = user + u, system + s
        todo.extend(child for child, parent in parents.items() if parent == current)
    return user, system


def tree_rss(pid: int) -> list[float]:
    """RSS in MiB of ``pid`` and each live descendant."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(status.split("PPid:")[1].split()[0])
        if int(entry.name) == pid or ppid == pid:
            rss = int(status.split("VmRSS:")[1].split()[0]) if "VmRSS:" in status else 0
            out.append(rss / 1024)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, name: str, args: list[str], env: dict[str, str], url: str) -> None:
        self.name = name
        self.url = url
        # Closed in close(): the log outlives this method.
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-peer-{name}-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, health: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(health, timeout=2) as reply:
                    body = reply.read().decode()
                    if '"warming"' not in body:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not become ready")

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid)

    def cpu_split(self) -> tuple[float, float]:
        return tree_cpu_split(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()  # our own child
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def start_hana(work: Path, workers: int, source: Path | None, profile: Path | None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(source or ROOT),
        "HANA_PROFILE_OUT": str(profile or ""),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(work / "data"),
        "MODELS_DIR": str(work / "models"),
        "VOSK_MODEL_PATH": str(work / "models" / "none"),
        "TTS_ENGINE": "espeak",
        "TELEPHONY_TOKEN": TELEPHONY_TOKEN,
        "QUESTIONNAIRE_DIR": str(write_questionnaires(work / "questionnaires")),
        "DEFAULT_QUESTIONNAIRE": "telephony_keypad_check",
        "MAX_CONCURRENT_SESSIONS": "1000",
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE": "1",
        "WORKERS": str(workers),
    }
    url = f"ws://127.0.0.1:{port}/ws/telephony?token={TELEPHONY_TOKEN}"
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "hana_voice", "serve"]
    if profile is not None:
        command[1:] = [str(ROOT / "bench" / "profiled_serve.py")]
    name = "hana" if source is None else "hana-before"
    server = Server(name if workers == 1 else f"{name}-w{workers}", command, env, url)
    server.wait_ready(f"http://127.0.0.1:{port}/health")
    return server


def start_pipecat(prompts: Path, vad: str) -> Server:
    port = free_port()
    python = pipecat_python()
    args = [str(python), str(ROOT / "bench" / "pipecat_server.py")]
    args += ["--port", str(port), "--prompts", str(prompts), "--vad", vad]
    server = Server("pipecat", args, dict(os.environ), f"ws://127.0.0.1:{port}/ws")
    server.wait_ready(f"http://127.0.0.1:{port}/health", timeout=180)
    return server


async def record_prompts(url: str, directory: Path) -> int:
    """One call to this service; each prompt's mu-law as it arrived, one file per prompt."""
    import json

    from trio_websocket import open_websocket_url

    prompts: list[bytearray] = [bytearray()]
    with trio.fail_after(60):
        async with open_websocket_url(url) as ws:
            start = {
                "streamSid": STREAM_SID,
                "callSid": "CA-record",
                "customParameters": {"questionnaire_id": "telephony_keypad_check"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            }
            await ws.send_message(json.dumps({"event": "start", "start": start}))
            keys = iter(("1", "1", "2", "1#", "1"))
            while True:
                try:
                    message = json.loads(await ws.get_message())
                except Exception:  # the server closed the call after the closing prompt
                    break
                if message.get("event") == "media":
                    prompts[-1] += base64.b64decode(message["media"]["payload"])
                elif message.get("event") == "mark":
                    await ws.send_message(json.dumps({"event": "mark", "mark": message["mark"]}))
                    prompts.append(bytearray())
                    for digit in next(keys, ""):
                        await ws.send_message(
                            json.dumps({"event": "dtmf", "dtmf": {"digit": digit}})
                        )
    kept = [p for p in prompts if p]
    for index, ulaw in enumerate(kept):
        (directory / f"{index:02d}.ulaw").write_bytes(bytes(ulaw))
    return len(kept)


def report(name: str, calls: int, cpu: float, wall: float, stats: Stats) -> bool:
    p50, p99, worst = stats.lateness()
    # Call audio actually carried: caller frames sent (a generator that fell behind sent
    # fewer, and the server then did less work: dividing by wall time would flatter it).
    audio = stats.frames_sent * 0.02
    inbound = audio / stats.call_seconds if stats.call_seconds else 0.0
    held = p99 <= HELD_P99 and stats.failed == 0 and inbound >= 0.95
    per = cpu / audio * 1e3 if audio else float("nan")
    print(
        f"  {name:9s} N={calls:3d}: CPU {per:5.1f} ms per second of call audio "
        f"({cpu / wall * 100:4.0f}% of a core; caller audio at {inbound * 100:3.0f}% of real "
        f"time), prompt lateness p50 {p50 * 1e3:4.0f} ms "
        f"p99 {p99 * 1e3:5.0f} ms max {worst * 1e3:5.0f} ms, calls {stats.calls} "
        f"failed {stats.failed}, prompts {len(stats.prompts)} "
        f"{'held' if held else 'NOT held'} {dict(stats.close_codes)}",
        flush=True,
    )
    return held


async def measure(
    server: Server, calls: int, window: float, marks: bool, profile: Path | None = None
) -> bool:
    if profile is not None:
        server.proc.send_signal(signal.SIGUSR1)  # profiled_serve.py: start the profile
    (user0, sys0), t0 = server.cpu_split(), time.monotonic()
    stats = await run_level(server.url, calls, window, marks=marks)
    (user1, sys1), wall = server.cpu_split(), time.monotonic() - t0
    held = report(server.name, calls, user1 - user0 + sys1 - sys0, wall, stats)
    audio = stats.frames_sent * 0.02 or 1.0
    print(
        f"    user {(user1 - user0) / audio * 1e3:.1f} + system {(sys1 - sys0) / audio * 1e3:.1f} "
        f"ms per second of call audio; {len(stats.prompts) / audio * 60:.1f} prompts a minute"
    )
    if profile is not None:
        server.proc.send_signal(signal.SIGUSR2)  # stop it and write the file
        await trio.sleep(2)
        (profile.parent / "current.prof").replace(profile)
        summarise(profile, stats.frames_sent * 0.02)
    return held


def summarise(path: Path, audio_seconds: float) -> None:
    """Function calls per second of call audio, and where the time went (deterministic)."""
    import pstats

    stats = pstats.Stats(str(path))
    total_calls = stats.total_calls  # type: ignore[attr-defined]  # set by pstats, untyped
    print(
        f"    profile {path.name}: {total_calls / audio_seconds:,.0f} Python function calls "
        f"per second of call audio; top by own time:"
    )
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]  # pstats' table, untyped
        key=lambda item: item[1][2],
        reverse=True,
    )
    total_time = sum(row[1][2] for row in rows) or 1.0
    for (filename, line, function), (_, ncalls, tottime, _, _) in rows[:14]:
        where = filename.rsplit("site-packages/", 1)[-1].rsplit("/hana_voice/", 1)[-1]
        print(
            f"      {tottime / total_time * 100:5.1f}%  {ncalls / audio_seconds:8.1f} calls/s  "
            f"{where}:{line}({function})"
        )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--targets",
        default="hana,pipecat",
        help="comma-separated: hana, pipecat, before (this service from --source)",
    )
    parser.add_argument("--levels", default="8,16,24,32,48", help="numbers of callers")
    parser.add_argument("--window", type=float, default=25.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=1, help="alternations per level")
    parser.add_argument("--workers", type=int, default=1, help="WORKERS for this service")
    parser.add_argument(
        "--pipecat-vad", default="silero", choices=("silero", "none"), help="Pipecat's VAD"
    )
    parser.add_argument(
        "--source", type=Path, help="run this service from another checkout (before/after)"
    )
    parser.add_argument("--profile", type=Path, help="cProfile this service per level, to DIR")
    args = parser.parse_args()
    targets = args.targets.split(",")
    levels = [int(n) for n in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    servers: dict[str, Server] = {}
    try:
        profile_dir: Path | None = args.profile
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        current = profile_dir / "current.prof" if profile_dir is not None else None
        source = None if "before" in targets else args.source
        hana = start_hana(work, args.workers, source, current)
        (work / "prompts").mkdir()
        count = trio.run(record_prompts, hana.url, work / "prompts")
        print(f"recorded {count} prompts from this service for both servers", flush=True)
        if "before" in targets:
            if args.source is None:
                parser.error("--targets before needs --source")
            servers["before"] = start_hana(work / "before", args.workers, args.source, None)
        if "hana" in targets:
            servers["hana"] = hana
            rss = tree_rss(hana.proc.pid)
            print(f"hana processes RSS (MiB, idle): {[round(r, 1) for r in rss]}", flush=True)
        else:
            hana.close()
        if "pipecat" in targets:
            servers["pipecat"] = start_pipecat(work / "prompts", args.pipecat_vad)
            rss = tree_rss(servers["pipecat"].proc.pid)
            print(f"pipecat processes RSS (MiB, idle): {[round(r, 1) for r in rss]}", flush=True)
        held: dict[str, int] = {name: 0 for name in servers}
        for level in levels:
            print(f"N={level} (load average {load_average()})", flush=True)
            for _ in range(args.rounds):
                for name, server in servers.items():
                    profile = None
                    if profile_dir is not None and name == "hana":
                        profile = profile_dir / f"{server.name}-N{level}.prof"
                    ok = trio.run(measure, server, level, args.window, name != "pipecat", profile)
                    if ok:
                        held[name] = max(held[name], level)
                    time.sleep(2)  # calls of the last run close before the next starts
        for name in servers:
            print(f"largest N held in real time: {name} {held[name]}")
    finally:
        for server in servers.values():
            server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
