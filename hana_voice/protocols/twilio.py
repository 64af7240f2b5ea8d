"""Twilio-style bidirectional media streams, on /ws/telephony and /ws/telephony/healthcare.

Twilio's ``<Connect><Stream>`` protocol is what most telephony providers copy (Telnyx, Exotel,
Plivo are close). Every message is a JSON text frame whose type key is ``event`` (not
``type``). The provider sends ``connected``, ``start``, ``media``, ``dtmf``, ``mark`` and
``stop``; we send ``media``, ``mark`` and ``clear`` (barge-in), each carrying the
``streamSid`` learnt from ``start``.

Only G.711 mu-law at 8000 Hz mono is carried: a ``start`` announcing another media format is
a fatal :class:`ProtocolError`, because every later audio frame would be misread. Other bad
input (binary frames, unknown events, bad base64, bad digits, media before ``start``, a second
``start``) is non-fatal, as on Maqsam.

``start.customParameters`` select the questionnaire and fill the context like Maqsam's custom
variables (see :mod:`hana_voice.protocols.call_context`); Twilio's own ``From``/``To`` and any
other phone-number-like keys are dropped.

Twilio allows no query string in ``<Stream url>``, so the service's token travels as
``<Parameter name="token">``: the codec keeps it in :attr:`TwilioCodec.setup_token` for the
session to compare (in constant time) before anything else happens; it never enters the
context. A questionnaire named by the endpoint URL (``?questionnaire=``, for providers that
allow query strings) is used when the parameters name none.

Hanging up or transferring a Twilio call takes a REST request, which is not the codec's
business: ``HangUp`` and ``Redirect`` produce no frames here; the session calls the provider's
API (:mod:`hana_voice.telephony`).
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
    MarkEcho,
    MarkOut,
    Ready,
    Redirect,
    ResultOut,
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
from hana_voice.protocols._payload import (
    check_outbound_pcm,
    chunk_samples,
    decode_base64_mulaw,
    encode_base64_mulaw_chunks,
    internal,
)
from hana_voice.protocols.base import Frame, InboundEvent, LegacyAudio, OutboundEvent
from hana_voice.protocols.call_context import clean_context, questionnaire_from

__all__ = ["MEDIA_ENCODING", "SAMPLE_RATE", "TOKEN_PARAMETER", "TwilioCodec"]

SAMPLE_RATE: Final = 8000
MEDIA_ENCODING: Final = "audio/x-mulaw"

_EVENTS: Final = ("connected", "start", "media", "dtmf", "mark", "stop")
#: The ``<Parameter>`` that carries TELEPHONY_TOKEN (Twilio allows no query string).
TOKEN_PARAMETER: Final = "token"


class TwilioCodec:
    """Sans-IO codec of Twilio-style media streams. ``chunk_ms`` bounds one ``media`` frame."""

    echoes_marks = True
    sample_rate = SAMPLE_RATE

    def __init__(self, *, chunk_ms: int = 20, questionnaire: str | None = None) -> None:
        self.samples_per_chunk = chunk_samples(chunk_ms, SAMPLE_RATE)
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.stopped = False
        #: The questionnaire named by the endpoint URL, used when the parameters name none.
        self.default_questionnaire = questionnaire
        #: ``customParameters.token``, for the session to verify; never logged.
        self.setup_token: str | None = None

    def __repr__(self) -> str:
        # Deliberately omits setup_token.
        return (
            f"TwilioCodec(stream_sid={self.stream_sid!r}, call_sid={self.call_sid!r}, "
            f"stopped={self.stopped})"
        )

    # ------------------------------------------------------------------ inbound

    def receive(self, frame: Frame) -> list[InboundEvent]:
        if isinstance(frame, bytes):
            raise bad_message(
                "binary frames are not part of media streams; audio travels in media events",
                "binary_frame",
            )
        message = parse_object(frame)
        kind = message.get("event")
        if not isinstance(kind, str):
            raise bad_message("message has no 'event' string")
        if kind not in _EVENTS:
            raise bad_message(f"unknown event {kind[:40]!r}", "unknown_type")
        if kind == "connected":
            return []
        if kind == "start":
            if self.stream_sid is not None:
                raise bad_message("a second start; ignored", "duplicate_start")
            try:
                return [self._start(message)]
            except ProtocolError as exc:
                # Without a readable start no later frame can be addressed or decoded.
                raise bad_message(str(exc), exc.code, fatal=True) from None
        if self.stream_sid is None:
            raise bad_message(f"{kind} before start; ignored", "not_set_up")
        if kind == "media":
            media = get_object(message, "media", "media")
            if media.get("track", "inbound") != "inbound":
                return []  # an echo of our own audio (tracks="both_tracks"); not the caller
            pcm = decode_base64_mulaw(media.get("payload"), "media.payload")
            return [AudioIn(pcm=pcm, sample_rate=SAMPLE_RATE)] if pcm else []
        if kind == "dtmf":
            return [DtmfIn(get_digit(get_object(message, "dtmf", "dtmf"), "digit", "dtmf"))]
        if kind == "mark":
            name = get_str(get_object(message, "mark", "mark"), "name", "mark", max_len=200)
            assert name is not None  # required=True
            return [MarkEcho(name)]
        self.stopped = True
        return [HangUpIn("provider sent stop")]

    def _start(self, message: dict[str, Any]) -> CallStarted:
        start = get_object(message, "start", "start", required=True)
        stream_sid = get_str(start, "streamSid", "start", required=False, max_len=200)
        stream_sid = stream_sid or get_str(message, "streamSid", "start", max_len=200)
        call_sid = get_str(start, "callSid", "start", required=False, max_len=200)
        self._check_media_format(get_object(start, "mediaFormat", "start"))
        custom = get_object(start, "customParameters", "start")
        token = custom.get(TOKEN_PARAMETER)
        self.setup_token = token if isinstance(token, str) else None
        context: dict[str, Any] = {**clean_context(custom), "provider": "twilio"}
        context["stream_id"] = stream_sid
        if call_sid:
            context["call_id"] = call_sid
        self.stream_sid, self.call_sid = stream_sid, call_sid
        return CallStarted(
            encoding="mulaw",
            sample_rate=SAMPLE_RATE,
            questionnaire_id=questionnaire_from(custom) or self.default_questionnaire,
            context=context,
            call_id=call_sid or stream_sid,
        )

    @staticmethod
    def _check_media_format(media_format: dict[str, Any]) -> None:
        # An absent mediaFormat means the provider's default, which is Twilio's mu-law.
        where = "start.mediaFormat"
        encoding = get_str(media_format, "encoding", where, required=False) or MEDIA_ENCODING
        rate = get_int(media_format, "sampleRate", where, SAMPLE_RATE)
        channels = get_int(media_format, "channels", where, 1)
        if (encoding.lower(), rate, channels) != (MEDIA_ENCODING, SAMPLE_RATE, 1):
            raise bad_message(
                # A close reason, logged: what is carried, never the client's values.
                f"unsupported media format: only {MEDIA_ENCODING} at {SAMPLE_RATE} Hz mono "
                "is carried",
                "unsupported_format",
                fatal=True,
            )

    # ------------------------------------------------------------------ outbound

    def send(self, event: OutboundEvent) -> list[Frame]:
        match event:
            case AudioOut(pcm=pcm, sample_rate=rate):
                check_outbound_pcm(pcm, rate, SAMPLE_RATE)
                sid = self._sid()
                return [
                    dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})
                    for payload in encode_base64_mulaw_chunks(pcm, self.samples_per_chunk)
                ]
            case MarkOut(label=label):
                return [dumps({"event": "mark", "streamSid": self._sid(), "mark": {"name": label}})]
            case BargeIn():
                return [dumps({"event": "clear", "streamSid": self._sid()})]
            case (
                Ready()
                | TranscriptOut()
                | AudioStart()
                | AudioEnd()
                | ResultOut()
                | ErrorOut()
                | Redirect()
                | HangUp()
            ):
                return []  # media streams have no message for these
            case LegacyAudio():
                raise internal("LegacyAudio belongs to the legacy dialect, not media streams")
            case _:
                assert_never(event)

    def _sid(self) -> str:
        if self.stream_sid is None:
            raise internal("outbound media before start: there is no streamSid to address")
        return self.stream_sid
