"""Maqsam's voice-agent WebSocket protocol, on /ws/maqsam and /ws/maqsam/healthcare.

Every message is a JSON text frame with a ``type`` key (see ../shared/maqsam-protocol.md and
docs/protocol.md). Audio both ways is base64 G.711 mu-law, 8000 Hz mono, without a header.

Decisions where Maqsam's documentation is silent, all taken defensively:

* Anything a peer can get wrong mid-call (a binary frame, an unknown type, bad base64, a digit
  that is not a digit, audio before ``session.setup``, a second ``session.setup``) is a
  *non-fatal* :class:`ProtocolError`: the session logs it and the call goes on, because dropping
  a patient's call over one odd frame is worse than ignoring the frame. Only a malformed
  ``session.setup`` is fatal, since nothing can be done without it.
* ``session.ready`` goes out once, and only after ``session.setup`` arrived (a third-party
  integration found that sending it earlier led to dropped connections); repeats send nothing.
* Reply audio is split into ``response.stream`` messages of at most ``chunk_ms`` (10-100 ms);
  pacing them near real time is the session's job, so that barge-in stays effective.
* A ``call.hangup`` from Maqsam (undocumented) is read as the caller hanging up.

Authentication: the ``apiKey`` of ``session.setup`` is kept in :attr:`MaqsamCodec.setup_api_key`
for the session to compare (in constant time) with MAQSAM_TOKEN; the codec never compares,
logs or shows it. A wrong key closes with 1002, a wrong ``Auth`` header with 1008.
"""

from __future__ import annotations

from typing import Any, Final, assert_never

from hana_voice.errors import AuthError, ProtocolError
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
    get_object,
    get_str,
    parse_object,
    type_name,
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

__all__ = ["APIKEY_CLOSE_CODE", "SAMPLE_RATE", "MaqsamCodec"]

SAMPLE_RATE: Final = 8000
#: Close code for a wrong ``apiKey`` in ``session.setup`` (Maqsam's own example uses it).
APIKEY_CLOSE_CODE: Final = 1002

_INBOUND_TYPES: Final = ("session.setup", "audio.input", "call.mark", "call.dtmf", "call.hangup")
_CONTEXT_FIELDS: Final = ("direction", "timestamp")


class MaqsamCodec:
    """Sans-IO codec of Maqsam's protocol. ``chunk_ms`` bounds one ``response.stream``."""

    echoes_marks = True
    sample_rate = SAMPLE_RATE

    def __init__(self, *, chunk_ms: int = 20, questionnaire: str | None = None) -> None:
        self.samples_per_chunk = chunk_samples(chunk_ms, SAMPLE_RATE)
        #: The questionnaire named by the agent URL (``?questionnaire=``): inbound calls carry
        #: no campaign fields, so operators choose it per number; custom variables win.
        self.default_questionnaire = questionnaire
        self.setup_seen = False
        self.ready_sent = False
        #: The token of ``session.setup``, for the session to verify; never logged.
        self.setup_api_key: str | None = None
        self.call_id: str | None = None

    def __repr__(self) -> str:
        # Deliberately omits setup_api_key.
        return (
            f"MaqsamCodec(call_id={self.call_id!r}, setup_seen={self.setup_seen}, "
            f"ready_sent={self.ready_sent})"
        )

    # ------------------------------------------------------------------ inbound

    def receive(self, frame: Frame) -> list[InboundEvent]:
        if isinstance(frame, bytes):
            raise bad_message(
                "binary frames are not part of the Maqsam protocol; audio travels in "
                "audio.input messages",
                "binary_frame",
            )
        message = parse_object(frame)
        kind = message.get("type")
        if not isinstance(kind, str):
            raise bad_message("message has no 'type' string")
        if kind == "session.setup":
            return [self._setup(message)]
        if kind not in _INBOUND_TYPES:
            raise bad_message(f"unknown message type {kind[:40]!r}", "unknown_type")
        if not self.setup_seen:
            raise bad_message(f"{kind} before session.setup; ignored", "not_set_up")
        data = get_object(message, "data", kind)
        if kind == "audio.input":
            pcm = decode_base64_mulaw(data.get("audio"), "audio.input.data.audio")
            return [AudioIn(pcm=pcm, sample_rate=SAMPLE_RATE)] if pcm else []
        if kind == "call.dtmf":
            return [DtmfIn(get_digit(data, "digit", "call.dtmf.data"))]
        if kind == "call.mark":
            label = get_str(data, "label", "call.mark.data", max_len=200)
            assert label is not None  # required=True
            return [MarkEcho(label)]
        return [HangUpIn("maqsam sent call.hangup")]

    def _setup(self, message: dict[str, Any]) -> CallStarted:
        if self.setup_seen:
            raise bad_message("a second session.setup; ignored", "duplicate_setup")
        api_key = message.get("apiKey")
        if api_key is not None and not isinstance(api_key, str):
            raise AuthError(
                f"session.setup.apiKey must be a string, got {type_name(api_key)}",
                close_code=APIKEY_CLOSE_CODE,
            )
        try:
            data = get_object(message, "data", "session.setup")
            context = get_object(data, "context", "session.setup.data")
            custom = get_object(context, "custom", "session.setup.data.context")
        except ProtocolError as exc:
            # Without a readable set-up there is no call to go on with.
            raise bad_message(str(exc), "bad_setup", fatal=True) from None
        call_id = context.get("id")
        if isinstance(call_id, int | float) and not isinstance(call_id, bool):
            call_id = str(call_id)
        call_id = call_id[:200] if isinstance(call_id, str) and call_id else None
        fields = {key: context[key] for key in _CONTEXT_FIELDS if isinstance(context.get(key), str)}
        # Custom keys may not overwrite what the provider itself says about the call.
        call_context = {**clean_context(custom), **fields, "provider": "maqsam"}
        if call_id is not None:
            call_context["call_id"] = call_id
        self.setup_seen, self.setup_api_key, self.call_id = True, api_key, call_id
        return CallStarted(
            encoding="mulaw",
            sample_rate=SAMPLE_RATE,
            questionnaire_id=questionnaire_from(custom) or self.default_questionnaire,
            context=call_context,
            call_id=call_id,
        )

    # ------------------------------------------------------------------ outbound

    def send(self, event: OutboundEvent) -> list[Frame]:
        match event:
            case AudioOut(pcm=pcm, sample_rate=rate):
                check_outbound_pcm(pcm, rate, SAMPLE_RATE)
                return [
                    dumps({"type": "response.stream", "data": {"audio": payload}})
                    for payload in encode_base64_mulaw_chunks(pcm, self.samples_per_chunk)
                ]
            case Ready():
                if not self.setup_seen:
                    raise internal("session.ready may be sent only after session.setup")
                if self.ready_sent:
                    return []
                self.ready_sent = True
                return [dumps({"type": "session.ready"})]
            case BargeIn():
                return [dumps({"type": "speech.started"})]
            case MarkOut(label=label):
                return [dumps({"type": "call.mark", "data": {"label": label}})]
            case Redirect():
                return [dumps({"type": "call.redirect"})]
            case HangUp():
                return [dumps({"type": "call.hangup"})]
            case TranscriptOut() | AudioStart() | AudioEnd() | ResultOut() | ErrorOut():
                return []  # Maqsam has no message for these
            case LegacyAudio():
                raise internal("LegacyAudio belongs to the legacy dialect, not Maqsam's")
            case _:
                assert_never(event)
