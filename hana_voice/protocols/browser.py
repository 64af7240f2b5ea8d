"""The browser JSON protocol of /ws, /ws/healthcare-questionnaire, /ws/secure*, and the JSON
dialect of /ws/echo and /ws/tts.

Control messages are JSON text frames with a ``type`` key; audio travels in binary frames, in
the encoding the client chose in its ``start`` message (PCM s16le at 16000 Hz when it sent
none). docs/protocol.md holds the reference with examples.

The codec guarantees that :class:`CallStarted` is the first inbound event: a client that skips
``start`` gets the defaults, announced by a ``CallStarted`` emitted before the event its first
message carried (unless ``require_start`` is set, in which case such a message is refused).
"""

from __future__ import annotations

from typing import Any, Final, assert_never

from hana_voice.errors import ProtocolError
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
    MarkOut,
    Ready,
    Redirect,
    ResultOut,
    SayRequest,
    TextIn,
    TranscriptOut,
)
from hana_voice.protocols._json import (
    bad_message,
    dumps,
    get_digit,
    get_int,
    get_object,
    get_str,
    parse_object,
)
from hana_voice.protocols._payload import check_outbound_pcm, internal, pcm_from_wire, pcm_to_wire
from hana_voice.protocols.base import Frame, InboundEvent, LegacyAudio, OutboundEvent
from hana_voice.protocols.call_context import clean_context, questionnaire_from

__all__ = [
    "INPUT_ENCODINGS",
    "MESSAGE_TYPES",
    "OUTPUT_ENCODINGS",
    "SAMPLE_RATES",
    "BrowserCodec",
]

SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
INPUT_ENCODINGS: Final = ("pcm_s16le", "mulaw", "wav")
OUTPUT_ENCODINGS: Final = ("pcm_s16le", "mulaw", "wav")
MESSAGE_TYPES: Final = ("start", "dtmf", "text", "say", "stop")

_DEFAULT_ENCODING = "pcm_s16le"
_DEFAULT_RATE = 16000


def _choice(value: str | None, accepted: tuple[str, ...], where: str, default: str) -> str:
    if value is None:
        return default
    if value not in accepted:
        raise bad_message(
            # Close reasons are logged: they name what is accepted, never echo the value.
            f"{where} must be one of {', '.join(accepted)}",
            "unsupported_format",
            fatal=True,
        )
    return value


class BrowserCodec:
    """Sans-IO codec of the browser JSON protocol.

    ``max_text_chars`` bounds ``text`` and ``say`` messages (MAX_TTS_CHARS);
    ``output_encoding`` is the default encoding of reply audio, which ``start.output_encoding``
    may override; ``require_start`` refuses any message before ``start``.
    """

    echoes_marks = False

    def __init__(
        self,
        *,
        max_text_chars: int = 1000,
        output_encoding: str = "pcm_s16le",
        require_start: bool = False,
    ) -> None:
        if output_encoding not in OUTPUT_ENCODINGS:
            raise ValueError(f"output_encoding must be one of {OUTPUT_ENCODINGS}")
        self.max_text_chars = max_text_chars
        self.require_start = require_start
        self.started: CallStarted | None = None
        #: The session began the call with the defaults because no start came in time.
        self.defaulted = False
        self.stopped = False
        self.input_encoding = _DEFAULT_ENCODING
        self.input_sample_rate = _DEFAULT_RATE
        self.output_encoding = output_encoding

    def __repr__(self) -> str:
        return (
            f"BrowserCodec(started={self.started is not None}, stopped={self.stopped}, "
            f"input={self.input_encoding}@{self.input_sample_rate}, "
            f"output={self.output_encoding})"
        )

    # ------------------------------------------------------------------ inbound

    def receive(self, frame: Frame) -> list[InboundEvent]:
        if self.stopped:
            raise bad_message("the call has ended; no messages are accepted after stop", "ended")
        if isinstance(frame, bytes):
            return [*self._implicit_start(), *self._audio(frame)]
        message = parse_object(frame)
        kind = message.get("type")
        if not isinstance(kind, str):
            raise bad_message("message has no 'type' string")
        if kind not in MESSAGE_TYPES:
            raise bad_message(
                f"unknown message type {kind[:40]!r}; expected one of {', '.join(MESSAGE_TYPES)}",
                "unknown_type",
            )
        if kind == "start":
            if self.defaulted:
                raise bad_message(
                    "start came after the call began with the defaults; send it at once"
                    " after the connection opens",
                    "duplicate_start",
                )
            if self.started is not None:
                raise bad_message(
                    "start may be sent only once, as the first message", "duplicate_start"
                )
            try:
                return [self._start(message)]
            except ProtocolError as exc:
                # A client whose set-up is wrong would send audio we would misread.
                raise bad_message(str(exc), exc.code, fatal=True) from None
        prefix = self._implicit_start()
        if kind == "stop":
            self.stopped = True
            return [*prefix, HangUpIn("client sent stop")]
        return [*prefix, *self._control(kind, message)]

    def _implicit_start(self) -> list[InboundEvent]:
        """The defaults' CallStarted when a client skips ``start``; nothing once started."""
        if self.started is not None:
            return []
        if self.require_start:
            raise bad_message("the first message must be start", "start_required")
        self.started = CallStarted(encoding=_DEFAULT_ENCODING, sample_rate=_DEFAULT_RATE)
        return [self.started]

    def start_with_defaults(self) -> CallStarted:
        """Begin with the defaults (no ``start`` came in time); a later ``start`` is refused."""
        if self.started is None:
            self.started = CallStarted(encoding=_DEFAULT_ENCODING, sample_rate=_DEFAULT_RATE)
            self.defaulted = True
        return self.started

    def _start(self, message: dict[str, Any]) -> CallStarted:
        encoding = _choice(
            get_str(message, "encoding", "start", required=False),
            INPUT_ENCODINGS,
            "start.encoding",
            _DEFAULT_ENCODING,
        )
        output = _choice(
            get_str(message, "output_encoding", "start", required=False),
            OUTPUT_ENCODINGS,
            "start.output_encoding",
            self.output_encoding,
        )
        rate = get_int(message, "sample_rate", "start", _DEFAULT_RATE)
        if rate not in SAMPLE_RATES:
            raise bad_message(
                f"start.sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}",
                "unsupported_format",
                fatal=True,
            )
        context = get_object(message, "context", "start")
        questionnaire = get_str(
            message, "questionnaire_id", "start", required=False, max_len=200
        ) or get_str(message, "template_id", "start", required=False, max_len=200)
        call_id = get_str(message, "call_id", "start", required=False, max_len=200)
        self.input_encoding, self.input_sample_rate, self.output_encoding = encoding, rate, output
        self.started = CallStarted(
            encoding=encoding,
            sample_rate=rate,
            questionnaire_id=questionnaire or questionnaire_from(context),
            context=clean_context(context),
            call_id=call_id,
        )
        return self.started

    def _audio(self, frame: bytes) -> list[InboundEvent]:
        if not frame:
            return []
        pcm = pcm_from_wire(frame, self.input_encoding, self.input_sample_rate)
        return [AudioIn(pcm=pcm, sample_rate=self.input_sample_rate)] if pcm else []

    def _control(self, kind: str, message: dict[str, Any]) -> list[InboundEvent]:
        if kind == "dtmf":
            return [DtmfIn(get_digit(message, "digit", "dtmf"))]
        text = get_str(message, "text", kind, max_len=self.max_text_chars)
        assert text is not None  # required=True
        if not text.strip():
            raise bad_message(f"{kind}.text is empty", "empty_text")
        if kind == "text":
            return [TextIn(text.strip())]
        request_id = get_str(message, "id", "say", required=False, max_len=200)
        return [SayRequest(text=text.strip(), request_id=request_id)]

    # ------------------------------------------------------------------ outbound

    def send(self, event: OutboundEvent) -> list[Frame]:
        match event:
            case AudioOut(pcm=pcm, sample_rate=rate):
                check_outbound_pcm(pcm, rate)
                return [pcm_to_wire(pcm, self.output_encoding, rate)] if pcm else []
            case Ready(session_id=session_id):
                return [dumps({"type": "ready", "session_id": session_id})]
            case TranscriptOut(transcript=t):
                message = {"type": "transcript", "text": t.text, "final": t.final}
                return [dumps({**message, "confidence": round(t.confidence, 3)})]
            case BargeIn():
                return [dumps({"type": "speech.started"})]
            case AudioStart(utterance_id=uid, text=text, sample_rate=rate):
                return [
                    dumps(
                        {
                            "type": "audio.start",
                            "id": uid,
                            "text": text,
                            "encoding": self.output_encoding,
                            "sample_rate": rate,
                        }
                    )
                ]
            case AudioEnd(utterance_id=uid, interrupted=interrupted):
                return [dumps({"type": "audio.end", "id": uid, "interrupted": interrupted})]
            case ResultOut(result=result):
                return [dumps({"type": "result", "result": dict(result)})]
            case ErrorOut(code=code, message=text):
                return [dumps({"type": "error", "code": code, "message": text})]
            case Redirect(reason=reason):
                return [dumps({"type": "redirect", "reason": reason})]
            case HangUp(reason=reason):
                return [dumps({"type": "end", "reason": reason})]
            case MarkOut():
                return []  # browsers do not echo marks (echoes_marks is False)
            case LegacyAudio():
                raise internal("LegacyAudio belongs to the legacy dialect, not the JSON one")
            case _:
                assert_never(event)
