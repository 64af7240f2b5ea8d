"""The frozen event vocabulary spoken between the wire codecs, the call session and the engines.

Codecs (browser JSON, legacy text frames, Maqsam, Twilio-style media streams) turn frames into
*inbound* events and *outbound* events into frames. Nothing between a codec and the engines
speaks anything else. Audio inside events is always 16-bit signed little-endian mono PCM
(``bytes``) with its sample rate beside it; codecs convert to and from the wire encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- inbound (caller -> service)


@dataclass(frozen=True)
class CallStarted:
    """The call's set-up: audio format, chosen questionnaire and context (ids, custom keys)."""

    encoding: str = "pcm_s16le"
    sample_rate: int = 16000
    questionnaire_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    call_id: str | None = None


@dataclass(frozen=True)
class AudioIn:
    """Caller audio, decoded to PCM s16le mono."""

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True)
class DtmfIn:
    """One keypad digit (0-9, * or #)."""

    digit: str


@dataclass(frozen=True)
class TextIn:
    """A typed answer, handled like a final transcript."""

    text: str


@dataclass(frozen=True)
class SayRequest:
    """The client asks the service to speak ``text`` (browser /ws and /ws/tts)."""

    text: str
    request_id: str | None = None


@dataclass(frozen=True)
class MarkEcho:
    """The peer has played all audio sent before the mark with this label."""

    label: str


@dataclass(frozen=True)
class HangUpIn:
    """The caller or the peer ended the call (stop message, socket closed)."""

    reason: str = "caller hung up"


# ---------------------------------------------------------------- recognition


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """A partial or final transcript from the recogniser."""

    text: str
    final: bool
    confidence: float = 1.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class SpeechStarted:
    """Voice activity began (used for barge-in)."""


@dataclass(frozen=True)
class SpeechEnded:
    """Voice activity ended (end of utterance)."""


# ---------------------------------------------------------------- outbound (service -> caller)


@dataclass(frozen=True)
class Utterance:
    """Something the service will say. ``interruptible`` prompts stop on barge-in."""

    utterance_id: str
    text: str
    interruptible: bool = True
    #: Whether the text is fixed (a questionnaire prompt) and may come from the prompt cache.
    cacheable: bool = True


@dataclass(frozen=True)
class AudioStart:
    utterance_id: str
    text: str
    sample_rate: int


@dataclass(frozen=True)
class AudioOut:
    """A chunk of reply audio, PCM s16le mono."""

    utterance_id: str
    pcm: bytes
    sample_rate: int


@dataclass(frozen=True)
class AudioEnd:
    utterance_id: str
    interrupted: bool = False


@dataclass(frozen=True)
class MarkOut:
    """Ask the peer to echo ``label`` once all audio before it has been played."""

    label: str


@dataclass(frozen=True)
class BargeIn:
    """The caller spoke over a prompt: the peer must drop audio it has buffered."""


@dataclass(frozen=True)
class TranscriptOut:
    """A transcript reported to the client."""

    transcript: Transcript


@dataclass(frozen=True)
class ResultOut:
    """The questionnaire's outcome, for clients that show it."""

    result: Mapping[str, Any]


@dataclass(frozen=True)
class ErrorOut:
    code: str
    message: str


@dataclass(frozen=True)
class Redirect:
    """Hand the caller to a human (telephony) or show a message (browser)."""

    reason: str


@dataclass(frozen=True)
class HangUp:
    """End the call after what was sent has played."""

    reason: str


@dataclass(frozen=True)
class Ready:
    session_id: str
