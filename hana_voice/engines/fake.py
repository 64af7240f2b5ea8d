"""Fake engines implementing the Protocols, for dialog and call-session tests.

:class:`FakeSpeechToText` "hears" a script: its recognisers detect speech by energy and, after
``min_speech_ms`` of non-silent audio followed by ``end_silence_ms`` of silence, end the
utterance with the script's next text. Detection by energy (not by decoding) means the audio
may go through any codec or resampler on the way, as a real caller's does. :func:`tone` and
:func:`silence` make such audio. :class:`FakeTextToSpeech` yields a tone whose length is
proportional to the text, in fixed-size chunks, optionally slowly (for barge-in tests).

Both are blocking like the real engines and reached the same way, through the runner.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

from hana_voice.errors import EngineError
from hana_voice.events import Transcript, Word

#: Peak sample value below which a 10 ms frame counts as silence.
SILENCE_PEAK = 500


def tone(ms: float, sample_rate: int, *, hz: float = 440.0, amplitude: int = 8000) -> bytes:
    """A sine tone of ``ms`` milliseconds, PCM s16le mono."""
    count = int(sample_rate * ms / 1000)
    step = 2 * math.pi * hz / sample_rate
    return struct.pack(f"<{count}h", *(int(amplitude * math.sin(step * i)) for i in range(count)))


def silence(ms: float, sample_rate: int) -> bytes:
    """``ms`` milliseconds of digital silence, PCM s16le mono."""
    return bytes(2 * int(sample_rate * ms / 1000))


def utterance(sample_rate: int, *, speech_ms: float = 400, silence_ms: float = 600) -> bytes:
    """Audio a :class:`FakeRecognizer` with default thresholds takes as one utterance."""
    return tone(speech_ms, sample_rate) + silence(silence_ms, sample_rate)


class FakeRecognizer:
    """A per-call recogniser ending utterances by energy. Implements ``Recognizer``."""

    def __init__(self, stt: FakeSpeechToText, sample_rate: int, phrases: list[str] | None):
        self.sample_rate = sample_rate
        self.phrases = phrases
        self.closed = False
        #: Every chunk length fed, for tests that check what reached the engine.
        self.fed_bytes = 0
        self._stt = stt
        self._frame_bytes = 2 * sample_rate // 100
        self._pending = b""
        self._speech_ms = 0
        self._silence_ms = 0

    def _check(self) -> None:
        if self.closed:
            raise EngineError("the recogniser is closed")

    def accept(self, pcm: bytes) -> Transcript | None:
        self._check()
        self.fed_bytes += len(pcm)
        self._pending += pcm
        ended: Transcript | None = None
        while len(self._pending) >= self._frame_bytes:
            frame, self._pending = (
                self._pending[: self._frame_bytes],
                self._pending[self._frame_bytes :],
            )
            samples = struct.unpack(f"<{len(frame) // 2}h", frame)
            if max(abs(s) for s in samples) >= SILENCE_PEAK:
                self._speech_ms += 10
                self._silence_ms = 0
            elif self._speech_ms:
                self._silence_ms += 10
            if (
                self._speech_ms >= self._stt.min_speech_ms
                and self._silence_ms >= self._stt.end_silence_ms
            ):
                ended = self._end()
            elif self._silence_ms >= self._stt.end_silence_ms:
                self._speech_ms = self._silence_ms = 0  # a click, not speech
        return ended

    def _end(self) -> Transcript:
        self._speech_ms = self._silence_ms = 0
        return self._stt.next_final()

    def partial(self) -> Transcript:
        self._check()
        if self._speech_ms < self._stt.min_speech_ms:
            return Transcript(text="", final=False, confidence=0.0)
        upcoming = self._stt.peek()
        return Transcript(text=upcoming.split(" ")[0], final=False, confidence=0.0)

    def finish(self) -> Transcript:
        self._check()
        if self._speech_ms >= self._stt.min_speech_ms:
            return self._end()
        self._speech_ms = self._silence_ms = 0
        return Transcript(text="", final=True, confidence=0.0)

    def set_phrases(self, phrases: Sequence[str] | None) -> None:
        self._check()
        self.phrases = None if phrases is None else list(phrases)

    def close(self) -> None:
        self.closed = True


class FakeSpeechToText:
    """Hears ``script`` one text per utterance, in order; then empty finals.

    ``confidence`` is reported for every word. Texts can be queued later with :meth:`say`.
    """

    name = "fake-stt"

    def __init__(
        self,
        script: Iterable[str] = (),
        *,
        min_speech_ms: int = 200,
        end_silence_ms: int = 300,
        confidence: float = 0.9,
        supports_grammar: bool = True,
    ) -> None:
        self.min_speech_ms = min_speech_ms
        self.end_silence_ms = end_silence_ms
        self.confidence = confidence
        self.supports_grammar = supports_grammar
        #: Every recogniser created, in order.
        self.recognizers: list[FakeRecognizer] = []
        self._script: deque[str] = deque(script)
        self._lock = threading.Lock()

    def say(self, *texts: str) -> None:
        """Queue what the caller will say next."""
        with self._lock:
            self._script.extend(texts)

    def peek(self) -> str:
        with self._lock:
            return self._script[0] if self._script else ""

    def next_final(self) -> Transcript:
        with self._lock:
            text = self._script.popleft() if self._script else ""
        words = tuple(
            Word(word=w, start=0.1 * i, end=0.1 * (i + 1), confidence=self.confidence)
            for i, w in enumerate(text.split())
        )
        confidence = self.confidence if words else 0.0
        return Transcript(text=text, final=True, confidence=confidence, words=words)

    def create_recognizer(
        self, sample_rate: int, phrases: Sequence[str] | None = None
    ) -> FakeRecognizer:
        chosen = list(phrases) if phrases is not None and self.supports_grammar else None
        recognizer = FakeRecognizer(self, sample_rate, chosen)
        self.recognizers.append(recognizer)
        return recognizer


class FakeTextToSpeech:
    """Yields a 440 Hz tone of ``ms_per_char`` per character, in ``chunk_ms`` chunks.

    ``chunk_delay_s`` sleeps before each chunk (a slow engine, for barge-in and timeout
    tests); ``fail_after_chunks`` raises EngineError after that many chunks.
    """

    name = "fake-tts"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        voice: str = "fake",
        ms_per_char: float = 60.0,
        chunk_ms: float = 100.0,
        chunk_delay_s: float = 0.0,
        fail_after_chunks: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.voice = voice
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.chunk_delay_s = chunk_delay_s
        self.fail_after_chunks = fail_after_chunks
        #: Every text synthesised, in order.
        self.texts: list[str] = []
        #: How many chunks were produced in all (stops early when the consumer leaves).
        self.chunks_produced = 0

    def duration_ms(self, text: str) -> float:
        return len(text.strip()) * self.ms_per_char

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.texts.append(text)
        audio = tone(self.duration_ms(text), self.sample_rate)
        step = 2 * int(self.sample_rate * self.chunk_ms / 1000)
        for index, start in enumerate(range(0, len(audio), step)):
            if self.fail_after_chunks is not None and index >= self.fail_after_chunks:
                raise EngineError("fake synthesis failed")
            if self.chunk_delay_s:
                time.sleep(self.chunk_delay_s)
            self.chunks_produced += 1
            yield audio[start : start + step]
