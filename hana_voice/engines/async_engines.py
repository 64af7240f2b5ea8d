"""Trio-side wrappers that reach the blocking engines only through the EngineRunner.

:class:`AsyncRecognizer` is what a call's STT reader holds: ``feed`` hands a chunk to the
recogniser in a worker thread and returns what is new (a changed partial, finals);
``finish`` flushes at the end of the audio; ``aclose`` frees the native recogniser.
:func:`synthesize_stream` iterates a synthesiser's chunks as they are produced.

Cancellation: engine threads cannot be interrupted. A cancelled or timed-out ``feed`` leaves
its thread running (abandoned by the runner) on the recogniser, so every thread call takes a
per-recogniser lock (a later call waits for the abandoned one rather than sharing the
recogniser) and is counted by a :class:`ThreadBusy`; ``aclose`` frees the recogniser at once
when no thread uses it, else the last thread frees it as it leaves. Audio fed by a
cancelled call may or may not have reached the recogniser. ``synthesize_stream`` stops the
synthesiser after the chunk in progress when the block is left early (see
:meth:`EngineRunner.stream`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

from hana_voice.engines.base import Recognizer, SpeechToText, TextToSpeech
from hana_voice.engines.runner import EngineRunner, ThreadBusy
from hana_voice.errors import EngineError
from hana_voice.events import Transcript

T = TypeVar("T")


class AsyncRecognizer:
    """One call's recogniser, reached from trio. Use from one task at a time."""

    def __init__(self, recognizer: Recognizer, runner: EngineRunner) -> None:
        self.sample_rate = recognizer.sample_rate
        self._recognizer = recognizer
        self._runner = runner
        self._lock = threading.Lock()
        self._busy = ThreadBusy()
        self._closed = False
        self._last_partial = ""

    async def _call(self, fn: Callable[[Recognizer], T], what: str) -> T:
        if self._closed:
            raise EngineError("the recogniser is closed")
        return await self._runner.run(self._in_thread, fn, what=what)

    def _in_thread(self, fn: Callable[[Recognizer], T]) -> T:
        # enter() before the closed check: aclose() then either sees us busy and leaves the
        # freeing to our exit(), or has already freed and set closed, which we see here.
        self._busy.enter()
        try:
            with self._lock:
                if self._closed:
                    raise EngineError("the recogniser is closed")
                return fn(self._recognizer)
        finally:
            self._busy.exit()

    async def feed(self, pcm: bytes) -> list[Transcript]:
        """Feed audio; return a partial if it changed (non-empty), then any final."""
        return await self._call(lambda rec: self._feed(rec, pcm), "speech recognition")

    def _feed(self, rec: Recognizer, pcm: bytes) -> list[Transcript]:
        final = rec.accept(pcm)
        if final is not None:
            self._last_partial = ""
            return [final]
        partial = rec.partial()
        if partial.text and partial.text != self._last_partial:
            self._last_partial = partial.text
            return [partial]
        return []

    async def finish(self) -> Transcript | None:
        """Flush pending audio; the final transcript, or None when nothing was recognised."""
        final = await self._call(self._finish, "speech recognition flush")
        return final if final.text else None

    def _finish(self, rec: Recognizer) -> Transcript:
        self._last_partial = ""
        return rec.finish()

    async def set_phrases(self, phrases: Sequence[str] | None) -> None:
        """Restrict the next utterance to ``phrases`` (ignored by models without grammars)."""
        chosen = None if phrases is None else list(phrases)
        await self._call(lambda rec: self._set_phrases(rec, chosen), "grammar switch")

    def _set_phrases(self, rec: Recognizer, phrases: list[str] | None) -> None:
        self._last_partial = ""
        rec.set_phrases(phrases)

    async def aclose(self) -> None:
        """Free the native recogniser, now or when an abandoned thread is done with it.

        Safe to call from a cancelled scope (a hang-up): the wait is shielded and short,
        because freeing never waits for a busy thread, it only leaves the job to it.
        """
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            # In a thread: freeing a Vosk recogniser takes ~15 ms of native work.
            await trio.to_thread.run_sync(self._busy.close_when_idle, self._recognizer.close)

    async def __aenter__(self) -> AsyncRecognizer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Creation:
    """A recogniser being created in a worker thread that the call may abandon.

    The runner abandons a thread when the call is cancelled (the caller hung up) or the
    creation times out; the recogniser the thread then makes would be dropped unfreed (a Vosk
    recogniser holds tens of MB of native memory). Whichever side comes second frees it.
    """

    def __init__(self, stt: SpeechToText, rate: int, phrases: list[str] | None) -> None:
        self._stt, self._rate, self._phrases = stt, rate, phrases
        self._lock = threading.Lock()
        self._abandoned = False
        self._made: Recognizer | None = None

    def make(self) -> Recognizer:
        made = self._stt.create_recognizer(self._rate, self._phrases)
        with self._lock:
            if self._abandoned:
                made.close()
            else:
                self._made = made
        return made

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            made, self._made = self._made, None
        if made is not None:
            made.close()


async def create_recognizer(
    stt: SpeechToText,
    runner: EngineRunner,
    sample_rate: int,
    phrases: Sequence[str] | None = None,
) -> AsyncRecognizer:
    """Create a recogniser for a call in a worker thread, at the rate of the call's audio.

    Cancellation: if the call is cancelled (or times out) while the thread is creating the
    recogniser, the thread frees what it made as soon as it is done (see ``_Creation``).
    """
    creation = _Creation(stt, sample_rate, None if phrases is None else list(phrases))
    try:
        recognizer = await runner.run(creation.make, what="recogniser creation")
    except BaseException:
        creation.abandon()
        raise
    return AsyncRecognizer(recognizer, runner)


async def transcribe(
    stt: SpeechToText,
    runner: EngineRunner,
    pcm: bytes,
    sample_rate: int,
    phrases: Sequence[str] | None = None,
) -> str:
    """The text of a whole recording (PCM s16le mono), fed in one-second pieces so that each
    thread call stays short; the recogniser is freed at the end, cancelled or not."""
    texts: list[str] = []
    step = sample_rate * 2
    async with await create_recognizer(stt, runner, sample_rate, phrases) as recognizer:
        for start in range(0, len(pcm), step):
            texts += [t.text for t in await recognizer.feed(pcm[start : start + step]) if t.final]
        final = await recognizer.finish()
        if final is not None:
            texts.append(final.text)
    return " ".join(t for t in texts if t).strip()


@asynccontextmanager
async def synthesize_stream(
    tts: TextToSpeech, runner: EngineRunner, text: str
) -> AsyncIterator[AsyncIterator[bytes]]:
    """``async with synthesize_stream(tts, runner, text) as chunks: async for pcm in chunks``.

    Chunks are PCM s16le at ``tts.sample_rate``. Leaving the block early stops the engine.
    """
    async with runner.stream(lambda: tts.synthesize(text), what=f"{tts.name} synthesis") as chunks:
        yield chunks
