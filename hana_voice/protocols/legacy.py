"""The legacy text-frame dialect of the deployed Hana front end, on /ws/tts and /ws/echo.

The deployed front end predates the JSON protocol and speaks whole utterances:

* /ws/tts: it sends the text frame ``tts:<arabic text>`` and expects one binary frame back
  holding a complete WAV file (16-bit mono) that ``new Audio(URL.createObjectURL(blob))`` plays;
* /ws/echo: it sends one binary frame holding a whole recording (WebM/Opus from MediaRecorder,
  Ogg, MP4 or WAV) and expects the text frame ``transcription: <text>``;
* on failure, either endpoint answers the text frame ``error: <reason>``.

The same socket on /ws/tts or /ws/echo may instead speak the JSON protocol of
:mod:`hana_voice.protocols.browser`; :func:`detect_dialect` tells which from the first frame.

Reply audio may reach this codec either as one :class:`LegacyAudio` or as the streamed
``AudioStart``/``AudioOut``/``AudioEnd`` of the other endpoints: the codec then gathers the
chunks and sends the WAV when the utterance ends uninterrupted, so the session need not know
which dialect it is speaking.
"""

from __future__ import annotations

from typing import Final, Literal, assert_never

from hana_voice.audio.wav import write_wav
from hana_voice.events import (
    AudioEnd,
    AudioOut,
    AudioStart,
    BargeIn,
    ErrorOut,
    HangUp,
    MarkOut,
    Ready,
    Redirect,
    ResultOut,
    SayRequest,
    TranscriptOut,
)
from hana_voice.protocols._json import bad_message
from hana_voice.protocols._payload import check_outbound_pcm
from hana_voice.protocols.base import Frame, InboundEvent, LegacyAudio, OutboundEvent, UtteranceIn

__all__ = [
    "CONTAINER_MAGIC",
    "Dialect",
    "LegacyAudio",
    "LegacyCodec",
    "UtteranceIn",
    "detect_dialect",
    "looks_like_container",
]

Dialect = Literal["json", "legacy"]

TTS_PREFIX: Final = "tts:"
TRANSCRIPTION_PREFIX: Final = "transcription: "
ERROR_PREFIX: Final = "error: "

#: Leading bytes of the containers a browser's MediaRecorder (or a WAV export) produces.
CONTAINER_MAGIC: Final = (
    b"\x1a\x45\xdf\xa3",  # EBML: WebM/Matroska (Chrome, Firefox)
    b"RIFF",  # WAV
    b"OggS",  # Ogg/Opus (Firefox)
)


def looks_like_container(data: bytes) -> bool:
    """Whether binary data starts like an audio container rather than raw samples."""
    # MP4 (Safari's MediaRecorder) has its 'ftyp' box type after a 4-byte size.
    return data.startswith(CONTAINER_MAGIC) or data[4:8] == b"ftyp"


def _endpoint_name(endpoint: str) -> str:
    return endpoint.split("?", 1)[0].rstrip("/")


def detect_dialect(first_frame: Frame, endpoint: str) -> Dialect:
    """The dialect a client speaks, judged from its first frame on ``endpoint`` (a URL path).

    Rules, first match wins:

    1. a text frame whose first non-blank character is ``{`` -> json;
    2. a text frame starting with ``tts:`` -> legacy;
    3. any other text frame -> legacy on /ws/tts (the old client's error replies are text it
       shows), json elsewhere (where the JSON codec explains what is wrong);
    4. a binary frame on /ws/echo that starts like a container (EBML ``1A45DFA3``, ``RIFF``,
       ``OggS``, or MP4 ``ftyp`` at offset 4) -> legacy: a whole recorded utterance;
    5. any other binary frame -> json (raw PCM streamed without a ``start``).
    """
    name = _endpoint_name(endpoint)
    if isinstance(first_frame, str):
        stripped = first_frame.lstrip()
        if stripped.startswith("{"):
            return "json"
        if stripped.startswith(TTS_PREFIX):
            return "legacy"
        return "legacy" if name == "/ws/tts" else "json"
    if name == "/ws/echo" and looks_like_container(first_frame):
        return "legacy"
    return "json"


class LegacyCodec:
    """Sans-IO codec of the legacy dialect. ``max_text_chars`` bounds ``tts:`` text."""

    echoes_marks = False

    def __init__(self, *, max_text_chars: int = 1000) -> None:
        self.max_text_chars = max_text_chars
        self._pending: list[bytes] = []
        self._pending_rate: int | None = None

    def __repr__(self) -> str:
        return f"LegacyCodec(buffering={self._pending_rate is not None})"

    def receive(self, frame: Frame) -> list[InboundEvent]:
        if isinstance(frame, bytes):
            if not frame:
                raise bad_message("empty binary frame; expected a recorded utterance", "bad_audio")
            return [UtteranceIn(frame)]
        stripped = frame.lstrip()
        if not stripped.startswith(TTS_PREFIX):
            raise bad_message("expected a 'tts:<text>' frame or a binary recording")
        text = stripped[len(TTS_PREFIX) :].strip()
        if not text:
            raise bad_message("tts: text is empty", "empty_text")
        if len(text) > self.max_text_chars:
            raise bad_message(
                f"tts: text is {len(text)} characters; the limit is {self.max_text_chars}",
                "text_too_long",
            )
        return [SayRequest(text=text)]

    def send(self, event: OutboundEvent) -> list[Frame]:
        match event:
            case LegacyAudio(pcm=pcm, sample_rate=rate):
                check_outbound_pcm(pcm, rate)
                return [write_wav(pcm, rate)]
            case AudioStart(sample_rate=rate):
                self._pending, self._pending_rate = [], rate
                return []
            case AudioOut(pcm=pcm, sample_rate=rate):
                check_outbound_pcm(pcm, rate, self._pending_rate)
                self._pending_rate = rate  # audio without AudioStart still makes a file
                self._pending.append(pcm)
                return []
            case AudioEnd(interrupted=interrupted):
                whole, whole_rate = b"".join(self._pending), self._pending_rate
                self._pending, self._pending_rate = [], None
                if interrupted or whole_rate is None:
                    return []
                return [write_wav(whole, whole_rate)]
            case TranscriptOut(transcript=transcript):
                if not transcript.final:
                    return []  # the old client shows only the finished transcription
                return [TRANSCRIPTION_PREFIX + transcript.text]
            case ErrorOut(message=message):
                return [ERROR_PREFIX + message]
            case Ready() | BargeIn() | MarkOut() | ResultOut() | Redirect() | HangUp():
                return []  # nothing in the old dialect carries these
            case _:
                assert_never(event)
