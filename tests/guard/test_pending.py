"""Connections that have not authenticated hold no session slot (issue 11: ten credential-less
Maqsam sockets sending junk kept every patient out with 1013), are limited per address, get a
short set-up deadline that junk frames do not extend, and cannot flood the log."""

from __future__ import annotations

import contextlib
import logging
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.telephony.peers import MaqsamPeer, open_peer
from tests.telephony.support import (
    MAQSAM_AUTH,
    MAQSAM_CUSTOM,
    MAQSAM_PATH,
    TELEPHONY_TOKEN,
    telephony_server,
)
from tests.wsclient import Client, connect

JUNK = '{"type": "audio.input", "data": {"audio": "AAAA"}}'


async def _junk_until_closed(client: Client, every: float = 0.1) -> tuple[int | None, str | None]:
    """Send junk before set-up until the server closes; the close code and reason."""

    async def junk() -> None:
        with contextlib.suppress(Exception):  # the server closed the socket
            while True:
                await client.send(JUNK)
                await trio.sleep(every)

    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(junk)
            closed = await client.closed(timeout=15)
            nursery.cancel_scope.cancel()
    return closed


async def test_credential_less_sockets_do_not_keep_patients_out(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(
        settings,
        tmp_path,
        loaders,
        max_concurrent_sessions=3,
        max_pending_per_address=0,
        setup_timeout=30.0,
    ) as server:
        with trio.fail_after(20):
            async with AsyncExitStack() as stack:
                for _ in range(10):
                    junk = await stack.enter_async_context(connect(server.ws_url + MAQSAM_PATH))
                    await junk.send(JUNK)
                await trio.sleep(0.3)
                assert server.services.registry.active == 0
                assert server.services.registry.pending == 10
                async with open_peer(MaqsamPeer, server.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as peer:
                    await peer.setup(MAQSAM_CUSTOM)
                    await peer.ready.wait()
                    assert server.services.registry.active == 1
                    async with server.client() as http:
                        body = (await http.get("/health")).json()
        assert body["sessions"] == {"active": 1, "max": 3, "pending": 10}


async def test_junk_before_setup_does_not_extend_the_setup_deadline(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, setup_timeout=1.0) as server:
        for path in (MAQSAM_PATH, f"/ws/telephony/healthcare?token={TELEPHONY_TOKEN}"):
            async with connect(server.ws_url + path, MAQSAM_AUTH) as client:
                started = trio.current_time()
                code, reason = await _junk_until_closed(client)
                waited = trio.current_time() - started
            assert code == 1008, (path, code, reason)
            assert reason == "no authenticated set-up within 1 s"
            assert 0.8 < waited < 5


async def test_pending_connections_are_limited_per_address(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(
        settings, tmp_path, loaders, max_pending_per_address=2, setup_timeout=30.0
    ) as server:
        with trio.fail_after(15):
            async with AsyncExitStack() as stack:
                for _ in range(2):
                    await stack.enter_async_context(connect(server.ws_url + MAQSAM_PATH))
                with trio.fail_after(5):
                    while server.services.registry.pending < 2:
                        await trio.sleep(0.01)
                async with connect(server.ws_url + MAQSAM_PATH) as third:
                    code, reason = await third.closed()
                assert code == 1008
                assert reason is not None and "waiting to authenticate" in reason
                # An authenticated call is not limited by the pending ones.
                async with open_peer(MaqsamPeer, server.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as peer:
                    await peer.setup(MAQSAM_CUSTOM)
                    await peer.ready.wait()
        assert server.services.registry.refused["pending_limit"] == 1


async def test_authenticated_call_over_the_cap_is_refused_with_1013(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, max_concurrent_sessions=1) as server:
        with trio.fail_after(15):
            async with open_peer(MaqsamPeer, server.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as first:
                await first.setup(MAQSAM_CUSTOM)
                await first.ready.wait()
                async with open_peer(
                    MaqsamPeer, server.ws_url + MAQSAM_PATH, MAQSAM_AUTH
                ) as second:
                    await second.setup(MAQSAM_CUSTOM, call_id="second")
                    await second.closed.wait()
                assert (second.close_code, second.close_reason) == (
                    1013,
                    "server busy: 1/1 sessions",
                )
                assert second.ready_count == 0


async def test_junk_frames_do_not_flood_the_log(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hana_voice")
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, setup_timeout=30.0) as server:
        with trio.fail_after(15):
            async with connect(server.ws_url + MAQSAM_PATH, MAQSAM_AUTH) as client:
                for _ in range(300):
                    await client.send(JUNK)
                await client.send("not json")
                await trio.sleep(0.5)
    lines = [r for r in caplog.records if r.getMessage() == "call.client_error"]
    assert 2 <= len(lines) <= 12, len(lines)
    codes = [getattr(r, "hana_fields", {}).get("code") for r in lines]
    assert "invalid_json" in codes, "a different problem still gets its line"
