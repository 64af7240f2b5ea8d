"""PostgreSQL taken away mid-run: calls go on, writes wait in memory, /health says degraded
with the backlog, /metrics counts it, and everything is written and handed over once the
server is back (postgres_server.stop()/start())."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from hana_voice.errors import StoreError
from hana_voice.results.store import ResultStore
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready, no_sessions_left, wait_prompt
from tests.conftest import SECRET, run_server
from tests.hardening.support import (
    ANSWER_COUNT,
    FRONT_END_CONTEXT,
    answer_the_rest,
    as_front_end_template,
    start_and_consent,
)
from tests.postgres import PostgresServer
from tests.results.conftest import JWT_SECRET
from tests.results.receiver import Receiver
from tests.wsclient import connect


@asynccontextmanager
async def server_down(postgres_server: PostgresServer) -> AsyncIterator[None]:
    """PostgreSQL stopped for the block (sessions closed, as in a restart), then started."""
    await trio.to_thread.run_sync(postgres_server.stop)
    try:
        yield
    finally:
        await trio.to_thread.run_sync(postgres_server.start)


async def _until(check: object, timeout: float = 20) -> None:
    with trio.fail_after(timeout):
        while not callable(check) or not check():
            await trio.sleep(0.05)


async def test_writes_wait_in_memory_and_are_written_when_postgres_returns(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, database_timeout=0.5)
    with trio.fail_after(60):
        async with (
            ResultStore.open_settings(settings) as store,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(
                lambda task_status: store.maintain(retry_interval=0.1, task_status=task_status)
            )
            await store.start_call("s1", "tpl", 4, {"patient_id": "p"})
            assert await store.record_answer("s1", "q1", 1, "نعم", 0.9, 1.0)
            async with server_down(postgres_server):
                assert not await store.record_answer("s1", "q2", 2, "لا", 0.8, 1.0)
                # Degraded: the next answers are held at once, the call does not wait.
                started = time.monotonic()
                assert not await store.record_answer("s1", "q3", 3, "3", 0.7, 1.0)
                await store.start_call("s2", "tpl", 1, {})
                assert time.monotonic() - started < 0.2
                with pytest.raises(StoreError):
                    await store.finish_call("s1", "completed", 30.0, outcome="completed")
                health = store.health()
                assert (health["state"], health["unwritten"], health["unwritten_calls"]) == (
                    "degraded",
                    4,
                    2,
                )
                assert store.write_failures >= 2
            await _until(lambda: store.health()["state"] == "ok")
            call = await store.get_call("s1")
            nursery.cancel_scope.cancel()
    assert call is not None
    assert (call["status"], call["outcome"]) == ("completed", "completed")
    assert [a["question_id"] for a in call["answers"]] == ["q1", "q2", "q3"]
    assert call["delivery"]["state"] == "pending"
    assert store.flushed_writes == 4
    assert store.lost_writes == 0


@pytest.mark.slow
async def test_a_call_goes_on_through_a_postgres_restart_and_is_handed_over(
    settings: Settings,
    postgres_server: PostgresServer,
    postgres_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    loaders, _, _ = fake_loaders()
    settings = live(
        as_front_end_template(settings, tmp_path / "questionnaires"),
        database_url=postgres_url,
        database_timeout=0.5,
        nextjs_api_url=receiver.url,
        jwt_secret=JWT_SECRET,
    )
    auth = {"Authorization": f"Bearer {SECRET}"}
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        with trio.fail_after(90):
            # Authenticated: only such calls are handed over (anonymous ones are stored only).
            secure = server.ws_url + "/ws/secure/healthcare"
            async with server.client() as http, connect(secure, list(auth.items())) as client:
                session_id = await start_and_consent(client, FRONT_END_CONTEXT)
                async with server_down(postgres_server):
                    await wait_prompt(client)
                    await client.send_json({"type": "dtmf", "digit": "1"})
                    result = await answer_the_rest(client, answered=1)
                    await no_sessions_left(server)
                    health = (await http.get("/health")).json()
                    metrics = (await http.get("/metrics")).text
                    during = await http.get(f"/calls/{session_id}", headers=auth)
                assert result["outcome"] == "completed"
                assert health["status"] == "degraded"
                assert health["results"]["state"] == "degraded"
                assert health["results"]["backend"] == "postgresql"
                assert health["results"]["unwritten"] >= ANSWER_COUNT
                assert "hana_results_degraded 1.0" in metrics
                assert "hana_results_unwritten " in metrics
                assert during.status_code == 503
                await receiver.wait_delivered(1)
                stored = (await http.get(f"/calls/{session_id}", headers=auth)).json()
                health = (await http.get("/health")).json()
                metrics = (await http.get("/metrics")).text
    assert stored["status"] == "completed"
    assert len(stored["answers"]) == ANSWER_COUNT
    [delivered] = receiver.delivered
    assert delivered.body["metadata"]["session_id"] == session_id
    assert health["results"] == {
        "backend": "postgresql",
        "state": "ok",
        "unwritten": 0,
        "unwritten_calls": 0,
    }
    assert "hana_results_degraded 0.0" in metrics
    assert "hana_results_lost_writes_total 0.0" in metrics
