"""A real ``hana-voice serve`` process: SIGTERM drains live calls with 1001, then exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tests.wsclient import connect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_sigterm_closes_live_calls_with_1001_and_exits(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / "data"),
        "MODELS_DIR": str(tmp_path / "models"),
        "SKIP_MODEL_LOADING": "true",
        "SHUTDOWN_GRACE": "1",
        "LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("wb")
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hana_voice", "serve"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with trio.fail_after(30):
            while True:
                try:
                    async with httpx.AsyncClient() as client:
                        if (await client.get(url + "/health")).status_code == 200:
                            break
                except httpx.TransportError:
                    await trio.sleep(0.1)
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.until("ready")
                process.send_signal(signal.SIGTERM)
                code, reason = await ws.closed(timeout=15)
            assert (code, reason) == (1001, "server restarting")
            await process.wait()
        assert process.returncode == 0
        logs = log_path.read_text()
        assert '"event": "service.signal"' in logs
        assert '"event": "service.drained"' in logs
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
        log_file.close()
