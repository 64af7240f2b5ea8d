"""The shared pacing clock: one ticker wakes every parked player on time, cancellation is clean."""

from __future__ import annotations

import trio
import trio.testing

from hana_voice.calls.pacing import TICK, PacingClock


async def test_waits_end_within_a_tick_of_their_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = PacingClock()
    woke: list[tuple[float, float]] = []

    async def wait(deadline: float) -> None:
        await clock.wait_until(deadline)
        woke.append((deadline, trio.current_time()))

    async with trio.open_nursery() as nursery:
        await nursery.start(clock.run)
        start = trio.current_time()
        async with trio.open_nursery() as waiters:
            for k in range(200):
                waiters.start_soon(wait, start + 0.013 * k)
        nursery.cancel_scope.cancel()
    assert len(woke) == 200
    for deadline, at in woke:
        assert deadline - TICK / 2 - 1e-9 <= at <= deadline + TICK / 2 + 1e-9
    assert clock.parked == 0


async def test_many_waits_share_one_wake_up(autojump_clock: trio.testing.MockClock) -> None:
    clock = PacingClock()
    times: set[float] = set()

    async def wait(deadline: float) -> None:
        await clock.wait_until(deadline)
        times.add(trio.current_time())

    async with trio.open_nursery() as nursery:
        await nursery.start(clock.run)
        start = trio.current_time()
        async with trio.open_nursery() as waiters:
            # 50 calls whose next chunks fall due at scattered instants within 10 ms.
            for k in range(50):
                waiters.start_soon(wait, start + 1.0 + 0.0002 * k)
        nursery.cancel_scope.cancel()
    assert len(times) <= 2  # one timer for all, not one per call


async def test_a_cancelled_wait_leaves_at_once(autojump_clock: trio.testing.MockClock) -> None:
    clock = PacingClock()
    async with trio.open_nursery() as nursery:
        await nursery.start(clock.run)
        start = trio.current_time()
        with trio.move_on_after(0.05) as scope:
            await clock.wait_until(start + 10.0)
        assert scope.cancelled_caught
        assert trio.current_time() - start < 0.06
        # The ticker skips the abandoned entry and keeps serving others.
        await clock.wait_until(trio.current_time() + 0.1)
        await trio.sleep(11)
        nursery.cancel_scope.cancel()
    assert clock.parked == 0


async def test_past_deadlines_and_no_ticker(autojump_clock: trio.testing.MockClock) -> None:
    clock = PacingClock()
    start = trio.current_time()
    await clock.wait_until(start + 0.5)  # not running: a plain sleep
    assert trio.current_time() >= start + 0.5
    async with trio.open_nursery() as nursery:
        await nursery.start(clock.run)
        now = trio.current_time()
        await clock.wait_until(now - 1.0)  # already due: a checkpoint only
        assert trio.current_time() == now
        nursery.cancel_scope.cancel()


async def test_stopping_the_ticker_wakes_parked_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = PacingClock()
    woke = trio.Event()

    async def wait() -> None:
        await clock.wait_until(trio.current_time() + 100.0)
        woke.set()

    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as ticker:
            await ticker.start(clock.run)
            outer.start_soon(wait)
            await trio.sleep(1)
            ticker.cancel_scope.cancel()
        with trio.fail_after(1):
            await woke.wait()
