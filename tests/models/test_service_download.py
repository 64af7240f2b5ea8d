"""The whole path on the real small model: a started service downloads it from the mirror,
installs it, switches to it and transcribes; a ``hana-voice serve`` process killed mid-download
is restarted and resumes the download instead of starting over.

The model is the Korean Vosk model packed as the production Arabic one (see mirror.py); exact
assertions use grammar mode, whose results are stable, as in tests/engines/test_vosk.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import trio

from hana_voice.audio.wav import write_wav
from hana_voice.engines.async_engines import transcribe
from hana_voice.engines.espeak_tts import load_espeak
from hana_voice.engines.manager import Loaders
from hana_voice.models.lock import DOWNLOADS
from hana_voice.settings import DEFAULT_VOSK_MODEL, Settings
from tests.conftest import SECRET, run_server
from tests.models.conftest import ARCHIVE, auto_settings
from tests.models.mirror import Mirror
from tests.wsclient import connect

pytestmark = pytest.mark.slow

PHRASES = ["네", "아니요", "안녕하세요"]


def korean_speech(text: str, rate: int = 16000) -> bytes:
    voice = load_espeak("ko")
    native = np.frombuffer(b"".join(voice.synthesize(text)), dtype=np.int16)
    gap = np.zeros(voice.sample_rate // 2, dtype=np.int16)
    audio = soxr.resample(np.concatenate([gap, native, gap, gap]), voice.sample_rate, rate)
    return np.asarray(audio, dtype=np.int16).tobytes()


async def test_service_downloads_switches_and_transcribes(
    settings: Settings, mirror: Mirror
) -> None:
    mirror.rate = 25e6  # about 4 s: time to look at the service while it downloads
    s = auto_settings(settings, mirror.url)
    async with run_server(s, Loaders()) as server, server.client() as client:
        # While the model downloads: /health at once, espeak speaks, the keypad answers.
        with trio.fail_after(20):
            while True:
                started = time.perf_counter()
                body = (await client.get("/health")).json()
                assert time.perf_counter() - started < 1.0
                download = body["models"]["downloads"][DEFAULT_VOSK_MODEL]
                if download["state"] == "downloading" and download["speed_bytes_per_second"]:
                    break
                await trio.sleep(0.05)
        assert body["engines"]["stt"]["state"] == "missing"
        assert body["engines"]["tts"]["state"] == "loaded"
        assert 0 < download["percent"] < 100 and download["bytes_done"] > 0
        async with connect(server.ws_url + "/ws/healthcare-questionnaire") as call:
            await call.until("ready")
            await call.send_json({"type": "start", "sample_rate": 16000})
            await call.until("audio.end", timeout=20)  # the greeting, spoken by espeak
            await call.send_json({"type": "dtmf", "digit": "1"})  # consent by keypad
            question = await call.until("audio.start", timeout=20)
            assert question["id"].endswith("medication_adherence")
            in_progress = server.services.engines.snapshot()
        # Then the switch, without a restart.
        with trio.fail_after(120):
            while server.services.engines.stt is None:
                await trio.sleep(0.1)
        body = (await client.get("/health")).json()
        assert body["engines"]["stt"]["state"] == "loaded"
        assert body["engines"]["stt"]["switches"] == 1
        assert body["models"]["downloads"][DEFAULT_VOSK_MODEL]["state"] == "installed"
        assert in_progress.stt_state == "loaded", "a call that had none takes it on its next turn"
        # And it transcribes: through a call, and exactly in grammar mode.
        pcm = korean_speech("안녕하세요")
        async with connect(server.ws_url + "/ws/echo") as echo:
            await echo.send(write_wav(pcm, 16000))
            reply = await echo.receive()
        assert isinstance(reply, str) and reply.startswith("transcription: ")
        assert reply != "transcription: ", "the downloaded model heard speech"
        stt = server.services.engines.stt
        assert stt is not None
        text = await transcribe(stt, server.services.runner, pcm, 16000, PHRASES)
        assert text == "안녕하세요"
        metrics = (await client.get("/metrics")).text
        assert 'hana_engine_switches_total{kind="stt"} 1.0' in metrics
        assert f'hana_model_download_progress_ratio{{model="{DEFAULT_VOSK_MODEL}"}} 1.0' in metrics


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(tmp: Path, mirror_url: str, port: int, log: Any) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(tmp / "data"),
        "MODELS_DIR": str(tmp / "models"),
        "MODELS_AUTO_DOWNLOAD": "stt",
        "MODELS_MIRROR_URL": mirror_url,
        "TTS_ENGINE": "espeak",
        "WARM_PROMPT_CACHE": "false",
        "VOICE_SERVICE_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("VOSK_MODEL_PATH", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hana_voice", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def _health(port: int) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        return body
    except httpx.HTTPError:
        return None


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_mid_download_resumes_after_restart(tmp_path: Path, mirror: Mirror) -> None:
    mirror.rate = 4e6  # slow enough that the kill lands mid-way
    part = tmp_path / "models" / DOWNLOADS / DEFAULT_VOSK_MODEL / f"{ARCHIVE}.part"
    log = (tmp_path / "serve.log").open("wb")
    first = _serve(tmp_path, mirror.url, port := _free_port(), log)
    try:
        _wait("the first service", lambda: _health(port), 60)
        _wait("8 MB downloaded", lambda: part.is_file() and part.stat().st_size > 8e6, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    kept = part.stat().st_size
    assert kept > 8e6, "the partial download survives the kill"
    mirror.rate = None
    second = _serve(tmp_path, mirror.url, port := _free_port(), log)
    try:
        body = _wait(
            "the model loaded",
            lambda: (h := _health(port)) and h["engines"]["stt"]["state"] == "loaded" and h,
            180,
        )
        download = body["models"]["downloads"][DEFAULT_VOSK_MODEL]
        assert download["state"] == "installed" and download["failures"] == 0
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        log.close()
    offsets = mirror.offsets(ARCHIVE)
    assert offsets[0] == 0 and offsets[-1] >= kept, offsets
    assert len(offsets) == 2, "one request per process: resumed, not restarted"
    assert (tmp_path / "models" / DEFAULT_VOSK_MODEL / "graph" / "HCLr.fst").is_file()
    assert not part.exists()
