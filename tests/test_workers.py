"""WORKERS=2: two processes on one port, each with its share of the cap, one results store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from hana_voice.errors import SettingsError
from hana_voice.settings import Settings
from hana_voice.workers import worker_settings
from tests.telephony.peers import TwilioPeer, keypad_caller, open_peer
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_QUESTIONNAIRE,
    TELEPHONY_TOKEN,
    write_questionnaires,
)
from tests.wsclient import connect


def test_worker_settings_mark_the_worker() -> None:
    settings = Settings(max_concurrent_sessions=5, workers=2)
    worker = worker_settings(settings, 1)
    assert (worker.workers, worker.worker_index, worker.max_concurrent_sessions) == (1, 1, 5)
    assert settings.worker_index is None


def test_workers_setting_is_validated() -> None:
    assert Settings.from_env({}).workers == 1
    assert Settings.from_env({"WORKERS": "2"}).workers == 2
    for bad in ("0", "65", "two"):
        with pytest.raises(SettingsError, match="WORKERS"):
            Settings.from_env({"WORKERS": bad})
    with pytest.raises(SettingsError, match=r"WORKERS.*MAX_CONCURRENT_SESSIONS"):
        Settings.from_env({"WORKERS": "4", "MAX_CONCURRENT_SESSIONS": "3"})


class Server:
    def __init__(self, process: trio.Process, data_dir: Path) -> None:
        self.process = process
        self.data_dir = data_dir
        self.logs: list[dict[str, Any]] = []
        self.port = 0
        self.bound = trio.Event()

    async def read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for data in self.process.stdout:
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    self.logs.append(entry)
                    if entry.get("event") == "service.workers":
                        self.port = entry["port"]
                        self.bound.set()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs if entry.get("event") == name]


@contextlib.asynccontextmanager
async def two_workers(tmp_path: Path, cap: int) -> AsyncIterator[Server]:
    env = {
        **os.environ,
        "WORKERS": "2",
        "HOST": "127.0.0.1",
        "PORT": "0",
        "MAX_CONCURRENT_SESSIONS": str(cap),
        "RATE_LIMIT_PER_MINUTE": "0",
        "DATA_DIR": str(tmp_path / "data"),
        "MODELS_DIR": str(tmp_path / "models"),
        "VOSK_MODEL_PATH": str(tmp_path / "no-model"),
        "TTS_ENGINE": "espeak",
        "TELEPHONY_TOKEN": TELEPHONY_TOKEN,
        "QUESTIONNAIRE_DIR": str(write_questionnaires(tmp_path / "questionnaires")),
        "SHUTDOWN_GRACE": "1",
        "LOG_LEVEL": "INFO",
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hana_voice", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    server = Server(process, tmp_path / "data")
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.read)
            with trio.fail_after(60):
                await server.bound.wait()
                # Both workers up, and their prompt caches warm (telephony calls need TTS).
                while len(server.events("prompt_cache.warmed")) < 2:
                    await trio.sleep(0.1)
            yield server
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                await process.wait()
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()  # our own child, stuck
            await process.wait()


async def test_two_workers_share_the_cap_and_both_serve(tmp_path: Path) -> None:
    cap, clients = 16, 24
    async with two_workers(tmp_path, cap) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        admitted: list[int] = []
        refused: list[int | None] = []
        hold = trio.Event()

        async def session() -> None:
            async with connect(url) as client:
                try:
                    message = await client.next_json()
                except ConnectionClosed as exc:
                    refused.append(exc.reason.code if exc.reason else None)
                    return
                assert message.get("type") == "ready"
                admitted.append(1)
                await hold.wait()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(session)
                    await trio.sleep(0.01)
                while len(admitted) + len(refused) < clients:
                    await trio.sleep(0.05)
                # The cap is the service's, not each worker's: exactly `cap` in all.
                assert len(admitted) == cap
                assert refused == [1013] * (clients - cap)
                hold.set()
        starts = server.events("call.start")
        assert len(starts) == cap
        # The kernel spreads connections over both workers' sockets (SO_REUSEPORT, by a hash
        # of the client port): 16 sessions all on one worker is a 1 in 2**15 chance.
        assert {e["worker"] for e in starts} == {0, 1}
    assert server.process.returncode == 0


async def test_two_workers_store_results_in_one_database(tmp_path: Path) -> None:
    async with two_workers(tmp_path, cap=20) as server:
        url = f"ws://127.0.0.1:{server.port}/ws/telephony?token={TELEPHONY_TOKEN}"

        async def call(k: int) -> None:
            async with open_peer(TwilioPeer, url) as peer:
                custom = {"questionnaire_id": KEYPAD_QUESTIONNAIRE, "patient_id": f"P-{k}"}
                await peer.setup(custom, call_sid=f"CA-worker-{k}")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for k in range(8):
                    nursery.start_soon(call, k)
    database = tmp_path / "data" / "hana_voice.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("SELECT status FROM calls").fetchall()
        answers = conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert sorted(r[0] for r in rows) == ["completed"] * 8
    assert answers == 8 * 4
    assert outbox == 8
    assert {e["worker"] for e in server.events("call.start")} <= {0, 1}


async def test_recovery_runs_once_in_the_supervisor_not_in_workers(tmp_path: Path) -> None:
    from hana_voice.results.database import ResultDatabase
    from hana_voice.results.store import ResultStore
    from hana_voice.workers import recover_interrupted

    settings = Settings(data_dir=tmp_path / "data", workers=2, max_concurrent_sessions=4)
    settings.data_dir.mkdir(parents=True)
    with trio.fail_after(10):
        async with ResultStore.open(settings.database_path) as store:
            await store.start_call("left-by-a-dead-process", "tpl", 1, {})
    # The supervisor, before starting workers: the call a dead process left is recovered.
    assert recover_interrupted(settings) == 1
    # A worker's settings say it is one, and its store leaves a sibling's live call alone.
    worker = worker_settings(settings, 1)
    assert worker.worker_index == 1 and Settings().worker_index is None
    with trio.fail_after(10):
        async with ResultStore.open(settings.database_path) as live:
            await live.start_call("live-in-worker-0", "tpl", 1, {})
            async with ResultStore.open(worker.database_path, recover=False):
                pass
            db = ResultDatabase(settings.database_path)
            call = db.get_call("live-in-worker-0")
            db.close()
    assert call is not None and call["status"] == "in_progress"
