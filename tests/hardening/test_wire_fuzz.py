"""A wire fuzzer against one real server: hostile frames on every WebSocket endpoint.

Several connections per endpoint send seeded random and malformed frames (see
:mod:`tests.hardening.wire_frames`), reconnecting whenever the server closes. Throughout,
/health must answer 200; afterwards no session may be left, memory must not have grown
beyond a loose bound, and every close the server chose must carry a documented code.

``HANA_FUZZ_FRAMES`` (frames per endpoint, default 300) and ``HANA_FUZZ_SEED`` scale and vary
a run; the figures of a long run are in docs/benchmarks/hardening.md.
"""

from __future__ import annotations

import collections
import contextlib
import os

import trio
from trio_websocket import ConnectionClosed

from hana_voice.calls.endpoints import ENDPOINTS, Endpoint
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import all_recognizers_closed, engines_ready, no_sessions_left
from tests.conftest import SECRET, RunningServer, run_server
from tests.hardening.support import rss_bytes
from tests.hardening.wire_frames import FrameMaker
from tests.wsclient import Client, connect

DOCUMENTED_CLOSE_CODES = {1000, 1001, 1002, 1007, 1008, 1009, 1011, 1013}
FRAMES = int(os.environ.get("HANA_FUZZ_FRAMES", "300"))
SEED = int(os.environ.get("HANA_FUZZ_SEED", "20240601"))
CONNECTIONS = 3
MAQSAM_TOKEN = "maqsam-token-for-fuzzing-0123456789abcdef"
TELEPHONY_TOKEN = "telephony-token-for-fuzzing-0123456789abc"
MAX_MESSAGE = 64 * 1024
#: Loose: allocator arenas and caches settle over a run; a per-frame or per-connection leak
#: at these counts would show as far more.
RSS_GROWTH_BOUND = 48 * 1024 * 1024


def headers_for(endpoint: Endpoint, lane: int) -> list[tuple[str, str]]:
    if endpoint.auth == "service":
        return [("Authorization", f"Bearer {SECRET}")]
    if endpoint.auth == "telephony":
        return [("Authorization", f"Bearer {TELEPHONY_TOKEN}")]
    if endpoint.auth == "maqsam" and lane != 0:
        return [("Authorization", f"Bearer {MAQSAM_TOKEN}")]
    return []  # lane 0 of Maqsam authenticates (or not) with session.setup's apiKey


class Tally:
    def __init__(self) -> None:
        self.closes: collections.Counter[tuple[str, int | None]] = collections.Counter()
        self.frames = 0
        self.connections = 0


async def drain(client: Client, closed_by_server: list[int | None]) -> None:
    """Read until the connection ends; note the server's close code if the server closed."""
    try:
        while True:
            await client.receive()
    except ConnectionClosed as exc:
        closed_by_server.append(exc.reason.code if exc.reason else None)


async def lane(
    server: RunningServer, endpoint: Endpoint, index: int, frames: int, tally: Tally
) -> None:
    maker = FrameMaker(endpoint, SEED * 1000 + hash(endpoint.path) % 1000 + index, MAX_MESSAGE)
    sent = 0
    while sent < frames:
        async with connect(server.ws_url + endpoint.path, headers_for(endpoint, index)) as client:
            tally.connections += 1
            server_closes: list[int | None] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, client, server_closes)
                try:
                    while sent < frames and not server_closes:
                        sent += 1
                        tally.frames += 1
                        # A server that has closed reads no more: a big frame would block.
                        with trio.move_on_after(0.5) as stuck:
                            await client.send(maker.frame())
                        if stuck.cancelled_caught:
                            break
                        if sent % 16 == 0:
                            await trio.sleep(0.01)  # let the call's tasks run between bursts
                except ConnectionClosed:
                    pass
                if not server_closes:
                    with trio.move_on_after(0.2):
                        while not server_closes:
                            await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            for code in server_closes:
                tally.closes[(endpoint.path, code)] += 1


async def watch_health(server: RunningServer, done: trio.Event, failures: list[str]) -> None:
    async with server.client() as http:
        while not done.is_set():
            response = await http.get("/health")
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")
            await trio.sleep(0.1)


async def fuzz_round(server: RunningServer, frames: int) -> Tally:
    tally = Tally()
    async with trio.open_nursery() as nursery:
        for endpoint in ENDPOINTS:
            for index in range(CONNECTIONS):
                nursery.start_soon(lane, server, endpoint, index, frames, tally)
    return tally


async def test_hostile_frames_on_every_endpoint(settings: Settings) -> None:
    loaders, stt, _ = fake_loaders()
    settings = live(
        settings,
        maqsam_token=MAQSAM_TOKEN,
        telephony_token=TELEPHONY_TOKEN,
        max_message_bytes=MAX_MESSAGE,
        max_concurrent_sessions=len(ENDPOINTS) * CONNECTIONS,
        idle_timeout=5.0,
        # The fuzzer's lanes stop reading and vanish: do not wait long for them.
        send_timeout=2.0,
    )
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        health_failures: list[str] = []
        done = trio.Event()
        with trio.fail_after(150):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_health, server, done, health_failures)
                # Warm-up: code paths, caches and allocator arenas reach their working size.
                await fuzz_round(server, max(30, FRAMES // 10))
                await no_sessions_left(server)
                before = rss_bytes()
                tally = await fuzz_round(server, FRAMES)
                await no_sessions_left(server)
                await all_recognizers_closed(stt)
                after = rss_bytes()
                done.set()
        assert health_failures == []
        assert server.services.registry.active == 0
        assert tally.frames == FRAMES * CONNECTIONS * len(ENDPOINTS)
        undocumented = {k: n for k, n in tally.closes.items() if k[1] not in DOCUMENTED_CLOSE_CODES}
        assert undocumented == {}, undocumented
        assert after - before < RSS_GROWTH_BOUND, (before, after)
        # Every endpoint really was exercised to the point of the server closing on us.
        assert {path for path, _ in tally.closes} == {e.path for e in ENDPOINTS}


async def test_a_too_big_message_then_another_kind_closes_1009_and_the_server_lives(
    settings: Settings,
) -> None:
    """Hypercorn 0.18.0 crashed the whole server on this sequence (see endpoints.py)."""
    settings = settings.with_overrides(max_message_bytes=MAX_MESSAGE)
    async with run_server(settings) as server:
        for first, second in ((b"\x00" * (2 * MAX_MESSAGE), "text"), ("x" * 2 * MAX_MESSAGE, b"")):
            async with connect(server.ws_url + "/ws") as client:
                await client.until("ready")
                await client.send(first)
                with contextlib.suppress(ConnectionClosed):  # the close may be here already
                    await client.send(second)
                code, _ = await client.closed()
            assert code == 1009
            async with server.client() as http:
                assert (await http.get("/health")).status_code == 200
        await no_sessions_left(server)
