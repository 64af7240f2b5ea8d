"""Admission over a real server: the session cap, the rate limit, shutdown with 1001."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio

from hana_voice.settings import Settings
from tests.conftest import run_server
from tests.wsclient import connect


async def test_session_cap_refuses_the_extra_client_with_1013(settings: Settings) -> None:
    settings = settings.with_overrides(max_concurrent_sessions=3)
    async with run_server(settings) as server, AsyncExitStack() as stack:
        clients = []
        for path in ("/ws", "/ws/echo", "/ws/healthcare-questionnaire"):
            client = await stack.enter_async_context(connect(server.ws_url + path))
            clients.append(client)
        await clients[0].until("ready")
        with trio.fail_after(5):
            while server.services.registry.active < 3:
                await trio.sleep(0.01)
        async with connect(server.ws_url + "/ws/tts") as extra:
            code, reason = await extra.closed()
        assert code == 1013
        assert reason == "server busy: 3/3 sessions"
        assert server.services.registry.refused["busy"] == 1
    assert server.services.registry.active == 0


async def test_rate_limit_closes_with_1008(settings: Settings) -> None:
    settings = settings.with_overrides(rate_limit_per_minute=2)
    async with run_server(settings) as server:
        for _ in range(2):
            async with connect(server.ws_url + "/ws") as client:
                await client.until("ready")
        async with connect(server.ws_url + "/ws") as client:
            code, reason = await client.closed()
        assert code == 1008
        assert reason is not None and "rate limit" in reason


async def test_shutdown_closes_live_calls_with_1001(settings: Settings) -> None:
    settings = settings.with_overrides(shutdown_grace=0.5)
    async with run_server(settings) as server, connect(server.ws_url + "/ws") as client:
        await client.until("ready")
        server.stop.set()
        code, reason = await client.closed(timeout=15)
        assert code == 1001
        assert reason == "server restarting"
    assert server.services.registry.active == 0
