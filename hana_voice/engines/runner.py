"""The one way the event loop reaches a blocking engine.

Every engine call runs in a worker thread through ``trio.to_thread.run_sync`` with the
process-wide ``trio.CapacityLimiter`` (sized by MAX_CONCURRENT_SESSIONS) and under
``PROCESSING_TIMEOUT``. A call that times out raises :class:`EngineTimeout`; the process and
other calls carry on.

Cancellation: threads cannot be interrupted. The runner abandons a cancelled or timed-out
thread (``abandon_on_cancel=True``); the thread runs to completion in the background, keeps
its limiter token until it finishes (so a hung engine still counts against capacity), and its
result is dropped. Callers that own per-call native state (a recogniser) must not free it
while an abandoned call may still be using it: see :class:`ThreadBusy`. The runner counts such
threads (:attr:`EngineRunner.busy_beyond_call`, shown by /health): callers keep each thread
call short (a recogniser is fed at most a few hundred ms of audio at a time, see
hana_voice.guard.audio), so an abandoned thread frees its limiter token within a bounded time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import trio

from hana_voice.errors import EngineError, EngineTimeout

T = TypeVar("T")


class ThreadBusy:
    """Tracks whether a worker thread is still using an object, so it is freed only after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._close_when_idle: Callable[[], None] | None = None

    def enter(self) -> None:
        with self._lock:
            self._busy += 1

    def exit(self) -> None:
        with self._lock:
            self._busy -= 1
            closer = self._close_when_idle if self._busy == 0 else None
            if closer is not None:
                self._close_when_idle = None
        if closer is not None:
            closer()

    def close_when_idle(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` now if no thread uses the object, else when the last one leaves."""
        with self._lock:
            if self._busy:
                self._close_when_idle = closer
                return
        closer()


class _Observer(Protocol):
    def labels(self, what: str) -> _Observation: ...


class _Observation(Protocol):
    def observe(self, amount: float) -> None: ...


class EngineRunner:
    """Runs blocking engine calls in threads behind one limiter and one timeout."""

    def __init__(
        self, limiter: trio.CapacityLimiter, timeout: float, observe: _Observer | None = None
    ) -> None:
        self.limiter = limiter
        self.timeout = timeout
        #: Optional latency histogram (labelled by ``what``) fed by every ``run``.
        self.observe = observe
        self._abandoned_lock = threading.Lock()
        self._abandoned = 0

    @property
    def busy_beyond_call(self) -> int:
        """Threads still running although the call that started them stopped waiting."""
        with self._abandoned_lock:
            return self._abandoned

    def _tracked(self, fn: Callable[[], T]) -> tuple[Callable[[], T], Callable[[], None]]:
        """``fn`` wrapped to count itself while it runs past an ``abandon()``.

        A thread counts from when it both runs and has been abandoned until it returns; one
        abandoned before it started (cancelled while waiting for the limiter) never runs
        ``fn`` or, if trio had already handed it to a thread, counts once it starts.
        """
        state = {"started": False, "done": False, "abandoned": False, "counted": False}

        def count() -> None:  # under the lock
            running = state["started"] and not state["done"]
            if running and state["abandoned"] and not state["counted"]:
                state["counted"] = True
                self._abandoned += 1

        def work() -> T:
            with self._abandoned_lock:
                state["started"] = True
                count()
            try:
                return fn()
            finally:
                with self._abandoned_lock:
                    state["done"] = True
                    if state["counted"]:
                        self._abandoned -= 1

        def abandon() -> None:
            with self._abandoned_lock:
                state["abandoned"] = True
                count()

        return work, abandon

    async def run(self, fn: Callable[..., T], *args: object, what: str = "engine call") -> T:
        """Run ``fn(*args)`` in a worker thread; raise EngineTimeout past the timeout."""
        started = time.perf_counter()
        work, abandon = self._tracked(lambda: fn(*args))
        try:
            with trio.fail_after(self.timeout):
                return await trio.to_thread.run_sync(
                    work, limiter=self.limiter, abandon_on_cancel=True
                )
        except trio.TooSlowError:
            abandon()
            raise EngineTimeout(f"{what} took longer than {self.timeout:g} s") from None
        except BaseException:
            abandon()  # cancelled: the call ended while its thread still runs
            raise
        finally:
            if self.observe is not None:
                self.observe.labels(what).observe(time.perf_counter() - started)

    @asynccontextmanager
    async def stream(
        self, make: Callable[[], Iterator[T]], *, what: str = "engine stream"
    ) -> AsyncIterator[AsyncIterator[T]]:
        """Iterate a blocking generator in one worker thread, handing its items over as they come.

        Use as ``async with runner.stream(lambda: tts.synthesize(text)) as chunks:``. The
        timeout bounds the wait for each item (the first one included), not the whole stream.
        Leaving the block early (a barge-in) tells the thread to stop after the item it is
        producing; the thread then closes the generator itself, so engine state is released in
        the thread that owns it.
        """
        send, receive = trio.open_memory_channel[object](1)
        stop = threading.Event()
        token = trio.lowlevel.current_trio_token()

        def produce() -> None:
            gen = make()
            try:
                for item in gen:
                    if stop.is_set():
                        break
                    trio.from_thread.run(send.send, item, trio_token=token)
            except (
                trio.Cancelled,
                trio.RunFinishedError,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
            ):
                pass  # the consumer left; nothing to hand over
            except Exception as exc:  # handed to the consumer, which raises it
                if not stop.is_set():
                    with contextlib.suppress(Exception):
                        trio.from_thread.run(send.send, exc, trio_token=token)
            finally:
                gen_close = getattr(gen, "close", None)
                if gen_close is not None:
                    gen_close()
                with contextlib.suppress(Exception):
                    trio.from_thread.run_sync(send.close, trio_token=token)

        async def run_thread() -> None:
            work, abandon = self._tracked(produce)
            try:
                await trio.to_thread.run_sync(work, limiter=self.limiter, abandon_on_cancel=True)
            except BaseException:
                abandon()
                raise

        async def items() -> AsyncGenerator[T, None]:
            while True:
                with trio.move_on_after(self.timeout) as scope:
                    try:
                        item = await receive.receive()
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        return
                if scope.cancelled_caught:
                    raise EngineTimeout(f"{what}: nothing within {self.timeout:g} s")
                if isinstance(item, EngineError):
                    raise item
                if isinstance(item, Exception):
                    raise EngineError(f"{what} failed: {type(item).__name__}: {item}") from item
                yield item  # type: ignore[misc]  # anything that is not an exception is a T

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_thread)
                chunks = items()
                try:
                    yield chunks
                finally:
                    stop.set()
                    receive.close()
                    nursery.cancel_scope.cancel()
                    # A consumer that broke out of its loop leaves the generator suspended.
                    with trio.CancelScope(shield=True):
                        await chunks.aclose()
        except BaseExceptionGroup as group:
            # The nursery is an implementation detail: callers see the one error itself.
            raise single_exception(group) from None


def single_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The only leaf of an exception group, or the group when it holds several."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else group
