"""The TTS-writing task: synthesised or cached audio out to the caller, paced near real time.

Each utterance is sent in chunks of CHUNK_MS at most LEAD seconds ahead of real time, so a
barge-in stops the rest at once: :meth:`Player.barge_in` cancels the current utterance's
scope, the peer is told to drop what it buffered (speech.started / clear), and at most LEAD
plus one chunk of audio was ever in flight. The waits go through the process's one
:class:`~hana_voice.calls.pacing.PacingClock` when the app runs one.

"Played" means heard by the caller: on peers that echo marks (Maqsam, Twilio) it is the echo of
the mark sent after the audio (with a watchdog in case a peer never echoes); on browsers it is
when the pacing clock passes the end of the audio. A barge-in discards the peer's buffered
audio, so marks still pending then are not "heard" when echoed (Twilio echoes them at once on
``clear``): they are dropped, and counted as ``marks_cleared``.
"""

from __future__ import annotations

import logging
import time

import trio

from hana_voice.audio.resample import StreamResampler
from hana_voice.calls.call import Call, PromptPlayed
from hana_voice.calls.pacing import OUTBOUND_CHUNK_MS, PacingClock
from hana_voice.calls.prompt_audio import RateCache
from hana_voice.engines.async_engines import synthesize_stream
from hana_voice.engines.prompt_cache import iter_chunks
from hana_voice.errors import EngineError, EngineUnavailable
from hana_voice.events import AudioEnd, AudioOut, AudioStart, BargeIn, MarkOut, Utterance
from hana_voice.logs import log_event

log = logging.getLogger(__name__)

CHUNK_MS = OUTBOUND_CHUNK_MS
#: How far ahead of real time audio may be sent: enough to ride out network jitter, small
#: enough that a barge-in leaves little already-sent audio to discard.
LEAD = 0.2
#: Extra wait for a mark echo beyond the audio's own duration before assuming it played.
MARK_GRACE = 3.0


class Player:
    def __init__(self, call: Call) -> None:
        self.call = call
        self._current: Utterance | None = None
        self._current_scope: trio.CancelScope | None = None
        #: Marks sent and not yet echoed (labels are the utterance ids).
        self.pending_marks: set[str] = set()
        #: Marks that were pending when a barge-in told the peer to drop its buffered audio.
        #: Twilio echoes those at once on ``clear`` although their audio was discarded, so
        #: their echo (or their watchdog) does not mean "heard".
        self.cleared_marks: set[str] = set()

    def barge_in(self) -> Utterance | None:
        """Stop the current utterance if it may be interrupted; return it if stopped."""
        current, scope = self._current, self._current_scope
        if current is None or scope is None or not current.interruptible:
            return None
        scope.cancel()
        return current

    async def run(self, nursery: trio.Nursery) -> None:
        async for utterance in self.call.speak_recv:
            await self._play(utterance, nursery)

    async def _play(self, utterance: Utterance, nursery: trio.Nursery) -> None:
        call = self.call
        pacer = _Pacer(call, utterance)
        interrupted = False
        self._current = utterance
        with trio.CancelScope() as scope:
            self._current_scope = scope
            try:
                await call.emit(AudioStart(utterance.utterance_id, utterance.text, call.out_rate))
                await self._stream(utterance, pacer)
            except EngineError as exc:
                log_event(
                    log,
                    logging.WARNING,
                    "call.tts_failed",
                    session_id=call.session_id,
                    code=exc.code,
                )
                await call.error(exc.code, f"speech synthesis failed: {exc}")
        self._current = None
        self._current_scope = None
        if scope.cancelled_caught:
            interrupted = True
            call.bump("barge_ins")
            # Tell the peer to drop audio it buffered but has not played yet; marks still
            # waiting behind that audio will not mean it was heard.
            self.cleared_marks |= self.pending_marks
            self.pending_marks.clear()
            await call.emit(BargeIn())
        await call.emit(AudioEnd(utterance.utterance_id, interrupted=interrupted))
        if interrupted:
            await call.dialog_send.send(PromptPlayed(utterance.utterance_id, interrupted=True))
        elif call.codec.echoes_marks:
            await call.emit(MarkOut(utterance.utterance_id))
            self.pending_marks.add(utterance.utterance_id)
            nursery.start_soon(self._mark_watchdog, utterance.utterance_id, pacer.end_time)
        else:
            if call.paced:
                await trio.sleep_until(pacer.end_time)
            await call.dialog_send.send(PromptPlayed(utterance.utterance_id))

    async def _stream(self, utterance: Utterance, pacer: _Pacer) -> None:
        """Send the utterance's audio: from the prompt cache, or streamed from the engine."""
        services = self.call.services
        tts = self.call.engines.tts
        if tts is None:
            raise EngineUnavailable(f"speech synthesis is {self.call.engines.tts_state}")
        cache = services.extras.get("prompt_cache")
        out_rate = self.call.out_rate
        prepared = self.call.prepared_audio
        # A personal prompt synthesised while the call was set up (issue 14): memory only.
        personal = None if prepared is None else await prepared.take(utterance.text)
        if personal is None and utterance.cacheable and cache is not None:
            pcm = await cache.get_or_synthesize(tts, services.runner, utterance.text)
            rates: RateCache = services.extras.setdefault("prompt_rates", RateCache())
            pcm = rates.at_rate(cache.key_for(tts, utterance.text), pcm, tts.sample_rate, out_rate)
            for chunk in iter_chunks(pcm, out_rate, CHUNK_MS):
                await pacer.send(chunk)
            return
        chunker = _Chunker(tts.sample_rate, out_rate)
        if personal is not None:
            for piece in iter_chunks(personal, tts.sample_rate, CHUNK_MS):
                for chunk in chunker.push(piece):
                    await pacer.send(chunk)
        else:
            async with synthesize_stream(tts, services.runner, utterance.text) as stream:
                async for piece in stream:
                    for chunk in chunker.push(piece):
                        await pacer.send(chunk)
        for chunk in chunker.flush():
            await pacer.send(chunk)

    def mark_echoed(self, label: str) -> bool:
        """A peer echoed a mark: True if it was one we were waiting for (its audio played)."""
        if label in self.cleared_marks:
            self.cleared_marks.discard(label)
            self.call.bump("marks_cleared")
            return False
        if label not in self.pending_marks:
            return False
        self.pending_marks.discard(label)
        return True

    async def _mark_watchdog(self, label: str, audio_end: float) -> None:
        await trio.sleep_until(audio_end + MARK_GRACE)
        self.cleared_marks.discard(label)  # a peer that never echoes cleared marks
        if label in self.pending_marks:
            self.pending_marks.discard(label)
            self.call.bump("marks_not_echoed")
            log_event(
                log,
                logging.WARNING,
                "call.mark_not_echoed",
                session_id=self.call.session_id,
                label=label,
            )
            await self.call.dialog_send.send(PromptPlayed(label))


class _Chunker:
    """Resamples engine PCM to the call's rate and cuts it into CHUNK_MS pieces."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.resampler = None if in_rate == out_rate else StreamResampler(in_rate, out_rate)
        self.chunk_bytes = int(out_rate * CHUNK_MS / 1000) * 2
        self.buffer = b""

    def push(self, pcm: bytes) -> list[bytes]:
        self.buffer += self.resampler.process(pcm) if self.resampler else pcm
        whole = len(self.buffer) - len(self.buffer) % self.chunk_bytes
        chunks = [self.buffer[i : i + self.chunk_bytes] for i in range(0, whole, self.chunk_bytes)]
        self.buffer = self.buffer[whole:]
        return chunks

    def flush(self) -> list[bytes]:
        if self.resampler is not None:
            self.buffer += self.resampler.flush()
        tail = self.buffer[: len(self.buffer) // 2 * 2]
        self.buffer = b""
        return [tail] if tail else []


class _Pacer:
    """Sends chunks no more than LEAD seconds ahead of real time."""

    def __init__(self, call: Call, utterance: Utterance) -> None:
        self.call = call
        self.utterance = utterance
        self.requested = time.perf_counter()
        self.t0: float | None = None
        self.sent = 0.0
        clock = call.services.extras.get("pacing_clock")
        self.clock: PacingClock | None = clock if isinstance(clock, PacingClock) else None

    def _first_audio(self) -> None:
        call, now = self.call, time.perf_counter()
        metrics = call.services.metrics
        source = "cache" if self.utterance.cacheable else "synthesis"
        metrics.tts_first_audio.labels(source).observe(now - self.requested)
        call.stats.setdefault("first_audio_ms", (now - self.requested) * 1e3)
        if call.speech_ended_at is not None:
            # The first reply after the caller stopped speaking.
            metrics.reply_latency.observe(now - call.speech_ended_at)
            call.bump("replies")
            call.bump("reply_latency_sum_ms", (now - call.speech_ended_at) * 1e3)
            call.speech_ended_at = None

    @property
    def end_time(self) -> float:
        return (self.t0 if self.t0 is not None else trio.current_time()) + self.sent

    async def send(self, chunk: bytes) -> None:
        call = self.call
        if self.t0 is None:
            self.t0 = trio.current_time()
            self._first_audio()
        if call.paced:
            if self.clock is not None:
                await self.clock.wait_until(self.t0 + self.sent - LEAD)
            else:
                await trio.sleep_until(self.t0 + self.sent - LEAD)
        await call.emit(AudioOut(self.utterance.utterance_id, chunk, call.out_rate))
        self.sent += len(chunk) / 2 / call.out_rate
