"""One pacing clock for every call's reply audio, instead of a timer per call per chunk.

Reply audio is sent at most LEAD seconds ahead of real time (see :mod:`hana_voice.calls.player`).
Waiting for each chunk's turn with ``trio.sleep_until`` costs a cancel scope, a deadline in
trio's timer heap and an epoll wake-up per call per chunk. :class:`PacingClock` keeps one heap
of parked tasks and one ticker task per process: every TICK it wakes all tasks whose time has
come in one pass, so N calls cost one timer, and their sends fall into the same loop iteration.

Wake-ups fall on a grid of TICK (20 ms): a task is woken within half a tick of its deadline,
early or late. That is harmless here: the audio is sent LEAD (200 ms) before it is due to play,
so a send 10 ms off its plan still arrives early.

Cancellation: :meth:`PacingClock.wait_until` is a trio checkpoint; a cancelled wait (a
barge-in cancels the player's scope) leaves the heap at once (lazily: its entry is skipped).
The ticker runs in the app's nursery for the life of the process; with nothing parked it
sleeps without a timer until the next wait arrives.
"""

from __future__ import annotations

import heapq
import itertools
import math
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
        self._sleep: trio.CancelScope | None = None
        self.running = False

    @property
    def parked(self) -> int:
        """Waits in the heap (cancelled ones included until the ticker skips them)."""
        return len(self._heap)

    def _tick_for(self, deadline: float) -> float:
        """The first instant of the tick grid at which ``deadline`` is due (within half a tick)."""
        return math.ceil((deadline - self.tick / 2) / self.tick) * self.tick

    async def wait_until(self, deadline: float) -> None:
        """Return near ``deadline`` (within half a tick); a checkpoint, cancellable."""
        if not self.running:
            await trio.sleep_until(deadline)  # no ticker (a bare call in a test)
            return
        if deadline <= trio.current_time() + self.tick / 2:
            await trio.lowlevel.checkpoint()
            return
        waiter = _Waiter(trio.lowlevel.current_task())
        heapq.heappush(self._heap, (deadline, next(self._seq), waiter))
        if self._ticker_parked and self._ticker is not None:
            self._ticker_parked = False
            trio.lowlevel.reschedule(self._ticker)
        elif self._sleep is not None:
            at = self._tick_for(deadline)
            if at < self._sleep.deadline:
                self._sleep.deadline = at  # due before the tick the ticker sleeps until

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
        half = self.tick / 2
        try:
            while True:
                if not heap:
                    self._ticker_parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                    continue
                # Sleep to the tick at which the earliest wait is due; a wait due earlier
                # that arrives meanwhile moves the deadline (see wait_until).
                with trio.CancelScope(deadline=self._tick_for(heap[0][0])) as self._sleep:
                    await trio.sleep_forever()
                self._sleep = None
                # Every wait due within half a tick of now goes in this one pass.
                now = trio.current_time()
                while heap and heap[0][0] <= now + half:
                    waiter = heapq.heappop(heap)[2]
                    if not waiter.woken:
                        waiter.woken = True
                        trio.lowlevel.reschedule(waiter.task)
        finally:
            self.running = False
            self._ticker = None
            self._sleep = None
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
