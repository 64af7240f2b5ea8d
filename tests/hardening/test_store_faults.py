"""Results that cannot leave or cannot be written: the receiver down, the database locked.

Calls must complete regardless; results wait in the outbox ("pending") while the receiver is
down, and answers written while SQLite is locked are kept in memory and written once the
lock is gone. Nothing a caller answered is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from hana_voice.results.store import ResultStore
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready, healthy, no_sessions_left, wait_prompt
from tests.conftest import SECRET, RunningServer, run_server
from tests.hardening.support import (
    ANSWER_COUNT,
    FRONT_END_CONTEXT,
    QUESTIONNAIRE,
    answer_the_rest,
    as_front_end_template,
    keypad_call,
    settled,
    start_and_consent,
)
from tests.results.conftest import closed_port_url, exclusive_lock
from tests.wsclient import connect

JWT_SECRET = "hardening-jwt-secret-0123456789-abcdef"


async def completed_calls(
    server: RunningServer, count: int, context: dict[str, Any] | None = None
) -> list[str]:
    session_ids: list[str] = []

    async def one() -> None:
        # Authenticated: only such calls are handed over (anonymous ones are stored only).
        bearer = [("Authorization", f"Bearer {SECRET}")]
        async with connect(server.ws_url + "/ws/secure/healthcare", bearer) as client:
            session_id, result = await keypad_call(client, context)
            code, _ = await client.closed()
        assert (code, result["outcome"]) == (1000, "completed")
        session_ids.append(session_id)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
    return session_ids


async def test_receiver_down_keeps_results_pending_and_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    settings = live(
        as_front_end_template(settings, tmp_path / "questionnaires"),
        nextjs_api_url=closed_port_url(),
        jwt_secret=JWT_SECRET,
    )
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        session_ids = await completed_calls(server, 3, FRONT_END_CONTEXT)
        await no_sessions_left(server)
        async with server.client() as http:
            with trio.fail_after(20):
                for session_id in session_ids:
                    while True:
                        response = await http.get(
                            f"/calls/{session_id}", headers={"Authorization": f"Bearer {SECRET}"}
                        )
                        assert response.status_code == 200, response.text
                        call = response.json()
                        delivery = call["delivery"]
                        if delivery["attempts"] >= 1 and delivery["state"] != "delivering":
                            break
                        await trio.sleep(0.05)
                    assert call["status"] == "completed"
                    assert len(call["answers"]) == ANSWER_COUNT
                    assert call["delivery"]["state"] == "pending"
                    assert call["delivery"]["last_status"] is None  # never reached
        backlog = await server.services.extras["store"].backlog()
        assert backlog["pending"] == 3
        assert backlog["delivered"] == 0
        await healthy(server)


async def test_lock_held_briefly_delays_writes_and_loses_nothing(settings: Settings) -> None:
    """A lock shorter than the store's busy timeout: writes wait, then go through."""
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        store: ResultStore = server.services.extras["store"]
        with trio.fail_after(60):
            async with (
                trio.open_nursery() as nursery,
                connect(server.ws_url + QUESTIONNAIRE) as client,
            ):
                session_id = await start_and_consent(client)
                with exclusive_lock(server.services.settings.database_path):
                    # Another call runs through the lock (its writes wait) ...
                    nursery.start_soon(completed_calls, server, 1)
                    # ... and this one answers while the file is locked.
                    await wait_prompt(client)
                    await client.send_json({"type": "dtmf", "digit": "1"})
                    await trio.sleep(1.0)
                result = await answer_the_rest(client, answered=1)
            stored = await settled(store, session_id)
            await no_sessions_left(server)
        assert result["outcome"] == "completed"
        assert stored["status"] == "completed"
        assert len(stored["answers"]) == ANSWER_COUNT
        assert store.unwritten == 0


async def test_lock_held_past_retries_keeps_answers_until_it_is_released(
    settings: Settings,
) -> None:
    """A lock outlasting every retry: the call completes, its writes wait in memory and are
    written once the lock is gone (at the latest when the store closes)."""
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        path = server.services.settings.database_path
        # Give up on the lock in milliseconds rather than the production 5 s x 4 tries.
        impatient = await ResultStore.connect(path, busy_timeout=0.05, lock_retries=0)
        server.services.extras["store"] = impatient
        try:
            with trio.fail_after(60):
                with exclusive_lock(path):
                    async with connect(server.ws_url + QUESTIONNAIRE) as client:
                        session_id, result = await keypad_call(client)
                        code, _ = await client.closed()
                    await no_sessions_left(server)
                    assert impatient.unwritten > 0, "the writes were held, not dropped"
                    await healthy(server)
                # The lock is gone: the held writes go in with the store's last try.
                await impatient.aclose()
                async with ResultStore.open(path) as reader:
                    stored = await reader.get_call(session_id)
        finally:
            await impatient.aclose()
        assert (code, result["outcome"]) == (1000, "completed")
        assert stored is not None
        assert stored["status"] == "completed"
        assert len(stored["answers"]) == ANSWER_COUNT
