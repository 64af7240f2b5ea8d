"""Engine threads that outlive their call are counted (and shown by /health) until they end."""

from __future__ import annotations

import threading

import trio

from hana_voice.engines.runner import EngineRunner
from hana_voice.settings import Settings
from tests.conftest import run_server


async def test_a_cancelled_call_s_thread_counts_until_it_returns() -> None:
    runner = EngineRunner(trio.CapacityLimiter(2), timeout=30)
    release = threading.Event()
    with trio.fail_after(10):
        with trio.move_on_after(0.2):
            await runner.run(release.wait, what="slow")
        assert runner.busy_beyond_call == 1
        assert runner.limiter.borrowed_tokens == 1
        release.set()
        while runner.limiter.borrowed_tokens:
            await trio.sleep(0.01)
        assert runner.busy_beyond_call == 0
        assert await runner.run(lambda: 7) == 7
        assert runner.busy_beyond_call == 0


async def test_timed_out_thread_counts_too() -> None:
    runner = EngineRunner(trio.CapacityLimiter(2), timeout=0.1)
    release = threading.Event()
    with trio.fail_after(10):
        try:
            await runner.run(release.wait, what="slow")
        except Exception as exc:
            assert type(exc).__name__ == "EngineTimeout"
        assert runner.busy_beyond_call == 1
        release.set()
        while runner.busy_beyond_call:
            await trio.sleep(0.01)


async def test_health_shows_engine_threads(settings: Settings) -> None:
    async with run_server(settings) as server, server.client() as http:
        body = (await http.get("/health")).json()
    assert body["engine_threads"] == {
        "busy": 0,
        "limit": settings.max_concurrent_sessions,
        "busy_beyond_call": 0,
    }


async def test_a_call_cancelled_while_waiting_for_the_limiter_does_not_count() -> None:
    runner = EngineRunner(trio.CapacityLimiter(1), timeout=30)
    release = threading.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner.run, release.wait)
            await trio.sleep(0.1)
            with trio.move_on_after(0.1):
                await runner.run(lambda: None)  # waits for the one token, then gives up
            assert runner.busy_beyond_call == 0
            release.set()
        assert runner.busy_beyond_call == 0
