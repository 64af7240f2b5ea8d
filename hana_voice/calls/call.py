"""The state one call shares between its tasks, and the channels that join them.

A :class:`Call` is created per connection by the session. Its tasks (frame reader, listener,
dialog, player) communicate only through the bounded channels below and ``emit``; none of
them touches another's internals, except the listener asking the player to stop (barge-in).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from hana_voice.admission import CLOSE_NORMAL, SessionHandle
from hana_voice.calls.personal_audio import PreparedAudio
from hana_voice.calls.transport import Transport
from hana_voice.engines.manager import EngineSet
from hana_voice.events import CallStarted, ErrorOut, Transcript, Utterance
from hana_voice.guard.audio import AudioIntake
from hana_voice.guard.log_limit import LogLimit
from hana_voice.guard.principal import ANONYMOUS, Principal
from hana_voice.logs import log_event
from hana_voice.protocols.base import Codec, OutboundEvent
from hana_voice.questionnaire.outcomes import OUTCOMES
from hana_voice.services import Services
from hana_voice.telephony.control import CallControl, FrameControl

log = logging.getLogger(__name__)

DIALOG_QUEUE = 64
SPEAK_QUEUE = 16


@dataclass(frozen=True)
class PromptPlayed:
    """An utterance finished playing to the caller (or was cut by barge-in)."""

    utterance_id: str
    interrupted: bool = False


@dataclass(frozen=True)
class CallerSpeaking:
    """Voice activity started: answer timers stop while the caller talks."""


DialogInput = Any  # inbound events, Transcript, PromptPlayed, CallerSpeaking


@dataclass
class Call:
    services: Services
    handle: SessionHandle
    transport: Transport
    codec: Codec
    #: "browser" or "telephony": escalation is a transfer on telephony, a message on browsers.
    channel: str
    #: "voice", "questionnaire", "echo" or "tts".
    mode: str
    kind: str
    started_at: float = field(default_factory=time.monotonic)
    setup: CallStarted | None = None
    out_rate: int = 16000
    #: Pace reply audio in real time (interactive calls) or send it as fast as it comes.
    paced: bool = True
    #: Seconds without a frame that end the call; None: IDLE_TIMEOUT, inf: never (sockets
    #: kept by WebSocket pings instead, calls/keepalive.py).
    idle_timeout: float | None = None
    end_code: int = CLOSE_NORMAL
    end_reason: str = "call ended"
    #: Metrics the session reports at the end (no patient data).
    stats: dict[str, float] = field(default_factory=dict)
    #: When the caller last stopped speaking (perf_counter), for the reply-latency metric.
    speech_ended_at: float | None = None
    phrases: list[str] | None = None
    phrases_changed: bool = False
    #: Set from outside the dialog (a transfer that failed): wins over the dialog's outcome
    #: when the call's result is stored. See :meth:`set_outcome`.
    outcome_override: tuple[str, dict[str, Any]] | None = None
    #: Personal prompts (names, dates) synthesised for this call while it was set up; memory
    #: only, never the prompt cache.
    prepared_audio: PreparedAudio | None = None
    #: How this call is hung up and transferred at the provider (issue 12).
    control: CallControl = field(default_factory=FrameControl)
    #: Whom the call speaks for: decides whether its results are handed over.
    principal: Principal = ANONYMOUS
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    #: The engines this call uses from start to end: a hot switch affects only later calls.
    engines: EngineSet = field(init=False)

    def __post_init__(self) -> None:
        self.engines = self.services.engines.snapshot()
        #: Caller audio, sliced, held to real time and bounded in bytes (hana_voice.guard).
        self.audio = AudioIntake(self.services.settings.audio_burst_seconds)
        self.log_limit = LogLimit()
        self.dialog_send, self.dialog_recv = trio.open_memory_channel[DialogInput](DIALOG_QUEUE)
        self.speak_send, self.speak_recv = trio.open_memory_channel[Utterance](SPEAK_QUEUE)
        self.scope = trio.CancelScope()

    @property
    def session_id(self) -> str:
        return self.handle.session_id

    def next_id(self, prefix: str = "u") -> str:
        return f"{prefix}{next(self._ids)}"

    def bump(self, name: str, amount: float = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + amount

    async def emit(self, event: OutboundEvent) -> None:
        """Encode ``event`` with the call's codec and send its frames."""
        for frame in self.codec.send(event):
            await self.transport.send(frame)

    async def error(self, code: str, message: str) -> None:
        self.bump("errors")
        self.services.metrics.errors.labels(code).inc()
        self.log_limited(logging.INFO, "call.client_error", code=code)
        await self.emit(ErrorOut(code=code, message=message))

    def log_limited(self, level: int, event: str, **fields: Any) -> None:
        """Log a line about client behaviour, at most a few a call (see guard.log_limit)."""
        # Per event and code: a flood of one kind of junk cannot hide a different problem.
        suppressed = self.log_limit.allow(f"{event}:{fields.get('code', '')}")
        if suppressed is None:
            return
        if suppressed:
            fields["suppressed"] = suppressed
        log_event(log, level, event, session_id=self.session_id, **fields)

    async def say(
        self,
        text: str,
        *,
        interruptible: bool = True,
        cacheable: bool = True,
        utterance_id: str | None = None,
    ) -> str:
        uid = utterance_id or self.next_id()
        await self.speak_send.send(Utterance(uid, text, interruptible, cacheable))
        return uid

    def set_phrases(self, phrases: list[str] | None) -> None:
        """Grammar for the next utterance; the listener applies it before feeding audio."""
        self.phrases = phrases
        self.phrases_changed = True

    async def transcript(self, transcript: Transcript) -> None:
        await self.dialog_send.send(transcript)

    def set_outcome(self, outcome: str, detail: Mapping[str, Any] | None = None) -> None:
        """Set the call's outcome from outside the dialog, e.g. ``transfer_failed`` when a
        promised transfer could not be made. Call it before the call's tasks end (the result
        is stored as they end); the last one set wins. ValueError for an unknown outcome.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown call outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        self.outcome_override = (outcome, dict(detail or {}))

    def end(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        """End the call: cancels every task of its nursery. The first reason given wins."""
        if self.scope.cancel_called:
            return
        self.end_reason, self.end_code = reason, code
        self.scope.cancel()
