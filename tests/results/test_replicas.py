"""Two real ``hana-voice serve`` processes on one PostgreSQL: calls side by side, the front end
hanging while they finish, PostgreSQL restarted, one replica SIGKILLed while it holds a
leased delivery and a call in progress; the front end comes back, the other replica delivers
everything, and each call reaches the receiver exactly once, as accepted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import trio

from hana_voice.results.handover import idempotency_key
from tests.frontend.database import SEEDED_TEMPLATE_ID, load_contract
from tests.postgres import PostgresServer, free_port
from tests.results.conftest import JWT_SECRET, VOICE_SECRET
from tests.results.receiver import Receiver
from tests.wsclient import Client, connect

pytestmark = pytest.mark.slow

#: Authenticated: only such calls are handed over (anonymous ones are stored only).
QUESTIONNAIRE = "/ws/secure/healthcare"
AUTH = {"Authorization": f"Bearer {VOICE_SECRET}"}
#: The front end's seeded template (q1 yes/no, q2 rating, q3 yes/no), read from its tables in
#: the same database, and the ids its results route requires.
CONTEXT = {"patient_id": str(uuid.uuid4()), "hospital_id": str(uuid.uuid4())}
LEASE_SECONDS = 3
#: Consent, then the first two questions (yes, rating 2), each key sent as its prompt starts.
KEYS = ("1", "1", "2")


def _command() -> list[str]:
    script = Path(sys.executable).parent / "hana-voice"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hana_voice"]


@dataclass
class Replica:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")


@asynccontextmanager
async def replica(
    name: str, tmp_path: Path, database_url: str, front_end: str
) -> AsyncIterator[Replica]:
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / name),
        "MODELS_DIR": str(tmp_path / name / "models"),
        "VOSK_MODEL_PATH": str(tmp_path / "absent-vosk-model"),
        "TTS_ENGINE": "espeak",
        "WARM_PROMPT_CACHE": "false",
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
        "VOICE_SERVICE_SECRET": VOICE_SECRET,
        "NEXTJS_API_URL": front_end,
        "JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": database_url,
        "TEMPLATES_DATABASE_URL": database_url,
        "DATABASE_TIMEOUT": "1",
        "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "REPLICA_ID": name,
    }
    log = (tmp_path / f"{name}.log").open("wb")
    # Popen returns once the child is forked; nothing here waits on it.
    process = subprocess.Popen([*_command(), "serve"], env=env, stdout=log, stderr=log)  # noqa: ASYNC220
    running = Replica(name, process, f"http://127.0.0.1:{port}")
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await trio.to_thread.run_sync(lambda: process.wait(30))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


async def _ready(http: httpx.AsyncClient, replica: Replica) -> None:
    while True:
        assert replica.process.poll() is None, f"{replica.name} exited at start"
        try:
            health = (await http.get(replica.url + "/health")).json()
            if health["engines"]["tts"]["state"] == "loaded":
                return
        except httpx.HTTPError:
            pass
        await trio.sleep(0.1)


async def _results_ok(http: httpx.AsyncClient, replica: Replica) -> None:
    """Wait until the replica's results store has written everything it held."""
    while (await http.get(replica.url + "/health")).json()["results"]["state"] != "ok":
        await trio.sleep(0.05)


async def _stored_answers(
    http: httpx.AsyncClient, replica: Replica, session_id: str, count: int
) -> None:
    while True:
        response = await http.get(f"{replica.url}/calls/{session_id}", headers=AUTH)
        if response.status_code == 200 and len(response.json()["answers"]) == count:
            return
        await trio.sleep(0.05)


async def _answer_then(client: Client, keys: tuple[str, ...]) -> str:
    """Answer ``keys`` as their prompts start; return the session id at the next prompt."""
    ready = await client.until("ready")
    await client.send_json(
        {
            "type": "start",
            "sample_rate": 16000,
            "template_id": SEEDED_TEMPLATE_ID,
            "context": CONTEXT,
        }
    )
    for key in keys:
        await client.until("audio.start")
        await client.send_json({"type": "dtmf", "digit": key})
    await client.until("audio.start")
    session_id: str = ready["session_id"]
    return session_id


async def _hung_up_call(replica: Replica, sessions: list[str]) -> None:
    """A call answered in part, then the caller hangs up: stored as incomplete."""
    async with connect(replica.ws_url + QUESTIONNAIRE, list(AUTH.items())) as client:
        sessions.append(await _answer_then(client, KEYS))


async def _call_left_open(
    replica: Replica,
    scope: trio.CancelScope,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A call answered in part and still open until ``scope`` is cancelled (its replica is
    killed meanwhile: the socket's close handshake would wait for a dead peer)."""
    with scope:
        async with connect(replica.ws_url + QUESTIONNAIRE, list(AUTH.items())) as client:
            task_status.started(await _answer_then(client, KEYS[:2]))
            await trio.sleep_forever()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()


async def _until(check: Any, timeout: float) -> None:
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(check):
            await trio.sleep(0.02)


async def test_two_replicas_share_results_and_deliver_each_call_once(
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_url: str,
    nursery: trio.Nursery,
) -> None:
    await trio.to_thread.run_sync(load_contract, postgres_url)
    front_port = free_port()
    receiver = Receiver(JWT_SECRET, down=True)
    await receiver.serve(nursery, front_port)
    front_end = f"http://127.0.0.1:{front_port}"
    on_a: list[str] = []
    on_b: list[str] = []
    with trio.fail_after(150):
        async with (
            replica("replica-a", tmp_path, postgres_url, front_end) as a,
            replica("replica-b", tmp_path, postgres_url, front_end) as b,
            # Closed before the replicas stop: an idle keep-alive would hold up B's shutdown.
            httpx.AsyncClient(timeout=10) as http,
        ):
            async with trio.open_nursery() as starting:
                starting.start_soon(_ready, http, a)
                starting.start_soon(_ready, http, b)
            # Calls side by side on both replicas; the front end hangs meanwhile.
            async with trio.open_nursery() as calls:
                for _ in range(3):
                    calls.start_soon(_hung_up_call, a, on_a)
                    calls.start_soon(_hung_up_call, b, on_b)
            # PostgreSQL restarts under both replicas; they reconnect on their own.
            await trio.to_thread.run_sync(postgres_server.restart)
            for each in (a, b):
                await _results_ok(http, each)
            # A call still in progress on A when it dies.
            orphan_scope = trio.CancelScope()
            orphan = await nursery.start(_call_left_open, a, orphan_scope)
            # Its answer is in the database (a replica killed while it holds writes in
            # memory, in an outage, loses them: docs/results.md).
            await _stored_answers(http, b, orphan, 1)
            # A holds a leased delivery (its request hangs at the front end): kill it.
            holding = (
                "SELECT count(*) FROM hana_voice.outbox WHERE state = 'delivering'"
                " AND claimed_by LIKE 'replica-a:%'"
            )
            await _until(lambda: _rows(postgres_url, holding)[0][0] > 0, 30)
            a.process.send_signal(signal.SIGKILL)
            await trio.to_thread.run_sync(a.process.wait)
            orphan_scope.cancel()
            held = await trio.to_thread.run_sync(
                _rows,
                postgres_url,
                "SELECT session_id FROM hana_voice.outbox WHERE state = 'delivering'"
                " AND claimed_by LIKE 'replica-a:%'",
            )
            assert held, "replica A died holding a lease"
            # Any replica answers for any call.
            response = await http.get(f"{b.url}/calls/{on_a[0]}", headers=AUTH)
            assert response.status_code == 200
            assert len(response.json()["answers"]) == 2
            # The front end comes back: B delivers its own calls and A's.
            receiver.down = False
            everything = on_a + on_b + [orphan]
            await receiver.wait_accepted(len(everything))
            await trio.sleep(0.5)  # nothing more arrives
            orphan_call = (await http.get(f"{b.url}/calls/{orphan}", headers=AUTH)).json()
            health = (await http.get(b.url + "/health")).json()
    keys = sorted(r.idempotency_key or "" for r in receiver.accepted)
    assert keys == sorted(idempotency_key(s) for s in everything)
    assert len(receiver.delivered) == len(everything), "no call was delivered twice"
    assert orphan_call["status"] == "incomplete"
    assert [a["question_id"] for a in orphan_call["answers"]] == ["q1"]
    assert orphan_call["delivery"]["state"] == "delivered"
    states = _rows(postgres_url, "SELECT state, count(*) FROM hana_voice.outbox GROUP BY state")
    assert states == [("delivered", len(everything))]
    assert health["results"]["state"] == "ok"
