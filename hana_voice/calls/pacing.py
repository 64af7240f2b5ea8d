"""One pacing clock for every call's reply audio, instead of a timer per call per chunk.

Reply audio is sent at most LEAD seconds ahead of real time (see :mod:`hana_voice.calls.player`).
Waiting for each chunk's turn with ``trio.sleep_until`` costs a cancel scope, a deadline in
trio's timer heap and an epoll wake-up per call per chunk. :class:`PacingClock` keeps one heap
of parked tasks and one ticker task per process: every TICK it wakes all tasks whose time has
come in one pass, so N calls cost one timer, and their sends fall into the same loop iteration.

A task is woken at most TICK late (or half a tick early). That is harmless here: the audio is
sent LEAD (200 ms) before it is due to play, so a send 20 ms off its plan still arrives early.

Cancellation: :meth:`PacingClock.wait_until` is a trio checkpoint; a cancelled wait (a
barge-in cancels the player's scope) leaves the heap at once (lazily: its entry is skipped).
The ticker runs in the app's nursery for the life of the process; with nothing parked it
sleeps without a timer until the next wait arrives.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.services import Services

__all__ = ["OUTBOUND_CHUNK_MS", "TICK", "PacingClock", "install"]

#: Reply audio per outbound message. Both providers take it (Maqsam asks for 20-100 ms chunks;
#: Twilio plays media payloads of any length): five times fewer frames, JSON documents, socket
#: writes and pacing waits than 20 ms messages, and barge-in is as fast, because ``clear`` /
#: ``speech.started`` discards whatever the provider holds, however it was cut.
OUTBOUND_CHUNK_MS = 100
#: The clock's resolution.
TICK = 0.02


class _Waiter:
    __slots__ = ("task", "woken")

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.woken = False


class PacingClock:
    """Parks tasks until a deadline on trio's clock; one ticker task serves them all."""

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._heap: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._ticker: trio.lowlevel.Task | None = None
        self._ticker_parked = False
        self.running = False

    @property
    def parked(self) -> int:
        """Waits in the heap (cancelled ones included until the ticker skips them)."""
        return len(self._heap)

    async def wait_until(self, deadline: float) -> None:
        """Return at ``deadline`` (up to one tick later); a checkpoint, cancellable."""
        if not self.running or deadline <= trio.current_time():
            if not self.running:
                await trio.sleep_until(deadline)  # no ticker (a bare call in a test)
            else:
                await trio.lowlevel.checkpoint()
            return
        waiter = _Waiter(trio.lowlevel.current_task())
        heapq.heappush(self._heap, (deadline, next(self._seq), waiter))
        if self._ticker_parked and self._ticker is not None:
            self._ticker_parked = False
            trio.lowlevel.reschedule(self._ticker)

        def abort(_: Any) -> trio.lowlevel.Abort:
            waiter.woken = True  # the ticker skips it
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ticker. Start it in a long-lived nursery; cancel it to stop."""
        self._ticker = trio.lowlevel.current_task()
        self.running = True
        task_status.started()
        heap = self._heap
        try:
            while True:
                if not heap:
                    self._ticker_parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                    continue
                # Waits due within half a tick are released together (early by at most that,
                # well inside LEAD); the ticker never sleeps past one tick while tasks wait.
                half = self.tick / 2
                now = trio.current_time()
                if heap[0][0] > now + half:
                    await trio.sleep_until(min(heap[0][0] - half, now + self.tick))
                    now = trio.current_time()
                while heap and heap[0][0] <= now + half:
                    waiter = heapq.heappop(heap)[2]
                    if not waiter.woken:
                        waiter.woken = True
                        trio.lowlevel.reschedule(waiter.task)
        finally:
            self.running = False
            self._ticker = None
            # Tasks still parked must not hang: wake them (their audio is sent early).
            while heap:
                waiter = heapq.heappop(heap)[2]
                if not waiter.woken:
                    waiter.woken = True
                    trio.lowlevel.reschedule(waiter.task)

    def _abort_park(self, _: Any) -> trio.lowlevel.Abort:
        self._ticker_parked = False
        return trio.lowlevel.Abort.SUCCEEDED


def install(app: QuartTrio, services: Services) -> None:
    """Run one clock in the app's nursery while serving; players find it in ``extras``."""
    clock = PacingClock()
    services.extras["pacing_clock"] = clock

    @app.before_serving
    async def start_pacing_clock() -> None:
        await app.nursery.start(clock.run)
