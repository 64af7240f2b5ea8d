"""The engine Protocols. Adapters implement them; tests use fakes that implement them too.

Every method here is *blocking*: the call session reaches engines only through
:class:`hana_voice.engines.runner.EngineRunner`, which runs them in worker threads behind the
process-wide ``trio.CapacityLimiter`` and ``PROCESSING_TIMEOUT``.

Audio crossing these interfaces is 16-bit signed little-endian mono PCM (``bytes``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from hana_voice.events import Transcript


@runtime_checkable
class Recognizer(Protocol):
    """A per-call streaming recogniser. Not thread-safe: one thread at a time."""

    sample_rate: int

    def accept(self, pcm: bytes) -> Transcript | None:
        """Feed audio; return a final transcript when the engine ends an utterance, else None."""
        ...

    def partial(self) -> Transcript:
        """The current partial transcript (final=False)."""
        ...

    def finish(self) -> Transcript:
        """Flush buffered audio and return the final transcript of what is pending."""
        ...

    def set_phrases(self, phrases: Sequence[str] | None) -> None:
        """Restrict recognition to these phrases (grammar mode), or lift it with None."""
        ...

    def close(self) -> None:
        """Free the recogniser's native state. Idempotent."""
        ...


class SpeechToText(Protocol):
    """A process-wide speech-to-text engine (one model loaded per process)."""

    name: str
    supports_grammar: bool

    def create_recognizer(
        self, sample_rate: int, phrases: Sequence[str] | None = None
    ) -> Recognizer: ...


class TextToSpeech(Protocol):
    """A process-wide synthesiser."""

    name: str
    voice: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield PCM chunks at ``sample_rate``; the first as early as the engine allows."""
        ...
