"""What every wire codec shares: the inbound and outbound event unions and the Codec shape.

A codec is a small sans-IO state machine in the style of h11: :meth:`Codec.receive` turns one
WebSocket frame (``str`` for a text frame, ``bytes`` for a binary one) into zero or more inbound
events, and :meth:`Codec.send` turns one outbound event into zero or more frames to write. A
codec never touches a socket, a clock or HTTP; the call session owns all of that.

Bad input raises :class:`~hana_voice.errors.ProtocolError`. When ``fatal`` is false the session
answers with an ``ErrorOut`` (sent through the same codec) and the call goes on; when it is true
the session closes the socket with ``close_code``. A codec never raises anything else for
anything a peer can send.

Two events exist only for the legacy dialect of the deployed Hana front end, whose messages carry
whole utterances instead of streams; they live here so that the unions stay complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hana_voice.events import (
    AudioEnd,
    AudioIn,
    AudioOut,
    AudioStart,
    BargeIn,
    CallStarted,
    DtmfIn,
    ErrorOut,
    HangUp,
    HangUpIn,
    MarkEcho,
    MarkOut,
    Ready,
    Redirect,
    ResultOut,
    SayRequest,
    TextIn,
    TranscriptOut,
)

__all__ = [
    "Codec",
    "Frame",
    "InboundEvent",
    "LegacyAudio",
    "OutboundEvent",
    "UtteranceIn",
]


@dataclass(frozen=True)
class UtteranceIn:
    """One whole recorded utterance in its container (WebM/Opus, Ogg, WAV, MP4), undecoded.

    Sent by the legacy /ws/echo client as a single binary frame; ``hana_voice.audio.decode``
    turns it into PCM.
    """

    data: bytes

    def __repr__(self) -> str:
        # The bytes are a patient's voice; a repr in a log line must not carry them.
        return f"UtteranceIn(<{len(self.data)} bytes>)"


@dataclass(frozen=True)
class LegacyAudio:
    """A whole reply utterance as PCM s16le mono, sent to a legacy client as one WAV file."""

    pcm: bytes
    sample_rate: int

    def __repr__(self) -> str:
        return f"LegacyAudio(<{len(self.pcm)} bytes>, sample_rate={self.sample_rate})"


#: A WebSocket message: ``str`` is a text frame, ``bytes`` a binary frame.
Frame = str | bytes

InboundEvent = (
    CallStarted | AudioIn | DtmfIn | TextIn | SayRequest | MarkEcho | HangUpIn | UtteranceIn
)

OutboundEvent = (
    Ready
    | TranscriptOut
    | BargeIn
    | AudioStart
    | AudioOut
    | AudioEnd
    | MarkOut
    | ResultOut
    | ErrorOut
    | Redirect
    | HangUp
    | LegacyAudio
)


class Codec(Protocol):
    """The shape shared by the four wire codecs."""

    #: Whether the peer echoes ``MarkOut`` back as ``MarkEcho`` once the audio before it has
    #: played. Where it does not, the session must not wait for echoes.
    echoes_marks: bool

    def receive(self, frame: Frame) -> list[InboundEvent]:
        """Events carried by one frame; raises ProtocolError on bad input."""
        ...

    def send(self, event: OutboundEvent) -> list[Frame]:
        """Frames that carry one outbound event (possibly none)."""
        ...
