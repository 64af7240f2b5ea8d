"""Caller audio enters a call in bounded pieces (issue 11: huge frames stalled every call).

A client may send a WebSocket frame of several MiB, minutes of audio. Processed whole, such a
frame holds the event loop in the VAD for seconds and hands the recogniser minutes of work in
one thread call that nobody can interrupt. So the frame reader passes every ``AudioIn``
through an :class:`AudioIntake`, which

1. cuts it into slices of at most :data:`SLICE_SECONDS` (the VAD, the recogniser feed and
   every other step then see at most that much audio at a time);
2. charges each slice to an :class:`AudioBudget`: audio may arrive as fast as real time, plus
   a burst allowance (network jitter, a provider catching up); beyond it slices are dropped;
3. queues the slices for the listener in a channel bounded in *bytes* (a listener that falls
   behind costs dropped audio, never memory).

Dropped audio is counted in the call's stats (``audio_over_rate_seconds``,
``audio_dropped_frames``), never buffered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

__all__ = [
    "QUEUE_BYTES",
    "SLICE_SECONDS",
    "AudioBudget",
    "AudioIntake",
    "HeardAudio",
    "Offered",
    "slices",
]

#: The most audio any step of a call processes at a time.
SLICE_SECONDS = 0.1
#: Caller audio queued between the frame reader and the listener: 10 s at 8 kHz, 5 s at
#: 16 kHz, 1.7 s at 48 kHz.
QUEUE_BYTES = 160 * 1024
_WIDTH = 2

#: What crosses from the frame reader to the listener once voice activity detection has run
#: on a slice: (PCM s16le to recognise, its rate, speech started with it, speech ended with
#: it). Silence outside an utterance never crosses (issue 16: a cheap path for silence).
HeardAudio = tuple[bytes, int, bool, bool]
#: Runs the VAD on one slice: what the listener must see, or None for silence.
Hear = Callable[[bytes, int], HeardAudio | None]


def slices(pcm: bytes, sample_rate: int, seconds: float = SLICE_SECONDS) -> list[bytes]:
    """``pcm`` (s16le mono) cut into pieces of at most ``seconds``, on sample boundaries."""
    step = max(_WIDTH, int(sample_rate * seconds) * _WIDTH)
    if len(pcm) <= step:
        return [pcm]
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


class AudioBudget:
    """A token bucket of audio seconds: refilled in real time, holding at most ``burst``.

    ``take(seconds)`` spends from it when enough is left. A client streaming in real time never
    runs dry; one sending faster is held to real time once its burst allowance is spent.
    """

    def __init__(self, burst_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst_seconds
        self._clock = clock
        self._tokens = burst_seconds
        self._last = clock()

    def take(self, seconds: float) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last))
        self._last = now
        if seconds > self._tokens + 1e-9:  # float sums of 0.1 s slices
            return False
        self._tokens -= seconds
        return True


@dataclass(frozen=True)
class Offered:
    """What became of one offered frame: seconds queued, over the rate, over the queue."""

    queued: float = 0.0
    over_rate: float = 0.0
    over_queue: float = 0.0


class AudioIntake:
    """Slices, budgets and queues one call's caller audio. One per call."""

    def __init__(
        self,
        burst_seconds: float,
        max_queue_bytes: int = QUEUE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = AudioBudget(burst_seconds, clock)
        self.max_queue_bytes = max_queue_bytes
        self.queued_bytes = 0
        # Unbounded in items, bounded in bytes by offer(): the slices vary in size.
        self._send, self._receive = trio.open_memory_channel[HeardAudio](math.inf)

    def offer(
        self,
        pcm: bytes,
        sample_rate: int,
        hear: Hear | None = None,
        dropped: Callable[[HeardAudio], None] | None = None,
    ) -> Offered:
        """Queue ``pcm`` slice by slice while the budget and the queue allow; drop the rest.

        ``hear`` (the listener's VAD) runs on each slice the budget admits, so even the VAD
        never sees more than a slice at a time; silence it returns None for is not queued.
        ``dropped`` learns of a heard slice the full queue could not take (its speech onset or
        end must not be lost with its audio).
        """
        queued = over_rate = over_queue = 0.0
        for piece in slices(pcm, sample_rate):
            seconds = len(piece) / _WIDTH / sample_rate
            if not self.budget.take(seconds):
                over_rate += seconds
                continue
            heard = (piece, sample_rate, False, False) if hear is None else hear(piece, sample_rate)
            if heard is None:
                queued += seconds  # heard, and nothing in it for the listener
            elif self.queued_bytes + len(heard[0]) > self.max_queue_bytes:
                over_queue += seconds
                if dropped is not None:
                    dropped(heard)
            else:
                self.queued_bytes += len(heard[0])
                self._send.send_nowait(heard)
                queued += seconds
        return Offered(queued, over_rate, over_queue)

    def close(self) -> None:
        self._send.close()

    def __aiter__(self) -> AudioIntake:
        return self

    async def __anext__(self) -> HeardAudio:
        # A plain iterator, not an async generator: a cancelled call leaves nothing to finalise.
        try:
            heard = await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        self.queued_bytes -= len(heard[0])
        return heard
