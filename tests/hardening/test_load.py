"""Many clients at once against the session cap, over a real server with fake engines.

The strict figures (health p99 under 50 ms, connect latency) are measured at larger scale
with the real espeak engine by bench/bench_load.py; here the bounds are generous so a loaded
two-core CI machine does not make the test flaky, while a leak or a refusal miscount still
fails it.
"""

from __future__ import annotations

import contextlib
import time

import httpx
import trio
from trio_websocket import ConnectionClosed

from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready, no_sessions_left, wait_prompt
from tests.conftest import RunningServer, run_server
from tests.hardening.support import QUESTIONNAIRE, percentile
from tests.wsclient import connect

CLIENTS = 100
CAPACITY = 10
#: Generous: the test's 100 clients share the server's one event loop and a shared two-core
#: CI box (measured 55-180 ms p99 here); the bench, with clients in another process, holds
#: the 50 ms target.
#: Sanity bounds only, with the server and the probe in one process on a shared CI box: the
#: p99 target itself is measured by bench/bench_load.py and bench/bench_attacks.py, with the
#: prober in a process of its own (docs/benchmarks.md). One slow probe (a GC pause, the box)
#: must not fail the suite; a stalled /health must.
HEALTH_MEDIAN_BOUND = 0.5
HEALTH_STALL_BOUND = 3.0


class Crowd:
    """Outcomes of a crowd of clients: admitted ones wait for ``leave`` before hanging up."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.admitted = 0
        self.refusals: list[tuple[int | None, str | None]] = []
        self.other: list[object] = []
        self.decided = trio.Event()
        self.leave = trio.Event()
        self.greeted = 0
        self.played = trio.Event()

    def _note(self) -> None:
        if self.admitted + len(self.refusals) + len(self.other) == self.size:
            self.decided.set()

    async def client(self, url: str) -> None:
        async with connect(url) as client:
            try:
                with trio.fail_after(30):
                    first = await client.next_json()
            except ConnectionClosed as exc:
                reason = exc.reason
                self.refusals.append((reason.code, reason.reason) if reason else (None, None))
                self._note()
                return
            if first.get("type") != "ready":
                self.other.append(first)
                self._note()
                return
            self.admitted += 1
            self._note()
            # Keep the server busy while the rest of the crowd arrives: play the greeting.
            await client.send_json({"type": "start", "sample_rate": 16000})
            await wait_prompt(client, timeout=30)
            self.greeted += 1
            if self.greeted == CAPACITY:
                self.played.set()
            await self.leave.wait()


async def probe_health(
    server: RunningServer,
    until: trio.Event,
    latencies: list[float],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """GET /health back to back until ``until`` is set, recording each latency."""
    async with server.client() as http:
        # The first request opens the connection: not part of the figure.
        assert (await http.get("/health")).status_code == 200
        task_status.started()
        while not until.is_set():
            started = time.perf_counter()
            response = await http.get("/health")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            await trio.sleep(0.005)


async def test_hundred_clients_get_ten_sessions_and_health_stays_fast(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    # One test address stands for a hundred callers: the per-address handshake limit is off.
    settings = live(settings, max_concurrent_sessions=CAPACITY, max_handshakes_per_address=0)
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        crowd = Crowd(CLIENTS)
        latencies: list[float] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(probe_health, server, crowd.leave, latencies)
                for _ in range(CLIENTS):
                    nursery.start_soon(crowd.client, server.ws_url + QUESTIONNAIRE)
                await crowd.decided.wait()
                await crowd.played.wait()
                assert server.services.registry.active == CAPACITY
                crowd.leave.set()
            await no_sessions_left(server)
        assert crowd.other == []
        assert crowd.admitted == CAPACITY
        assert crowd.refusals == [(1013, f"server busy: {CAPACITY}/{CAPACITY} sessions")] * (
            CLIENTS - CAPACITY
        )
        assert server.services.registry.refused["busy"] == CLIENTS - CAPACITY
        assert len(latencies) >= 3
        assert percentile(latencies, 50) < HEALTH_MEDIAN_BOUND, sorted(latencies)[-5:]
        assert max(latencies) < HEALTH_STALL_BOUND, sorted(latencies)[-5:]
        # The slots are free again: a new client is admitted.
        async with connect(server.ws_url + "/ws") as client:
            assert (await client.next_json())["type"] == "ready"
        await no_sessions_left(server)


async def test_health_answers_while_sessions_churn(settings: Settings) -> None:
    """Clients that connect and leave at once, over and over, leave nothing behind."""
    loaders, _, _ = fake_loaders()
    # One test address stands for a hundred callers: the per-address handshake limit is off.
    settings = live(settings, max_concurrent_sessions=CAPACITY, max_handshakes_per_address=0)
    async with run_server(settings, loaders) as server:
        await engines_ready(server)

        async def churn() -> None:
            for _ in range(10):
                async with connect(server.ws_url + "/ws/healthcare-questionnaire") as client:
                    # Refused while the slots were full is also fine here.
                    with contextlib.suppress(ConnectionClosed):
                        await client.next_json()

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(2 * CAPACITY):
                    nursery.start_soon(churn)
            await no_sessions_left(server)
            async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
                health = (await http.get("/health")).json()
        assert (
            server.services.registry.total_admitted + sum(server.services.registry.refused.values())
            == 20 * CAPACITY
        )
        assert health["sessions"]["active"] == 0
