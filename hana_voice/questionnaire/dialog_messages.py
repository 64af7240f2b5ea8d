"""The messages of the questionnaire dialog: events in, actions out (all frozen).

Defined here so the call session and the codecs can import them without the machine; the
machine in :mod:`hana_voice.questionnaire.dialog` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hana_voice.questionnaire.outcomes import Outcome
from hana_voice.questionnaire.template import AnswerValue

Channel = Literal["telephony", "browser"]
Source = Literal["voice", "keypad"]
EscalationReason = Literal["critical_answer", "caller_request", "repeated_failures"]
CHANNELS: tuple[Channel, ...] = ("telephony", "browser")

# ---------------------------------------------------------------- events in


@dataclass(frozen=True)
class UserSaid:
    """A final transcript or a typed answer; ``confidence`` is the recogniser's (0..1)."""

    text: str
    confidence: float = 1.0


@dataclass(frozen=True)
class KeyPressed:
    digit: str


@dataclass(frozen=True)
class PromptPlayed:
    """The prompt finished playing to the caller: the session starts its answer timer now."""

    prompt_id: str


@dataclass(frozen=True)
class NoResponse:
    """The session's answer timer for this prompt ran out."""

    prompt_id: str


@dataclass(frozen=True)
class CallerHungUp:
    reason: str = "caller hung up"


@dataclass(frozen=True)
class TransferDone:
    """The provider took the caller over after an ``Escalate(mode="transfer")``."""


@dataclass(frozen=True)
class TransferFailed:
    """The transfer could not be made (not configured, or the provider's API failed)."""

    reason: str = "transfer_failed"


Event = (
    UserSaid | KeyPressed | PromptPlayed | NoResponse | CallerHungUp | TransferDone | TransferFailed
)

# ---------------------------------------------------------------- actions out


@dataclass(frozen=True)
class Expectation:
    """What the caller is asked for: the recogniser's phrase list and the answer timeout."""

    question_id: str
    answer_type: str
    phrases: tuple[str, ...]
    response_timeout: float


@dataclass(frozen=True)
class Speak:
    """Say ``text`` (vocalised when the template has it); ``display_text`` is for screens."""

    prompt_id: str
    text: str
    display_text: str
    interruptible: bool = True
    expects: Expectation | None = None
    #: Holds a value from the call's context (a name, a date): synthesised for this call only,
    #: never cached or logged.
    personal: bool = False


@dataclass(frozen=True)
class RecordAnswer:
    question_id: str
    question_order: int
    response: AnswerValue | None
    confidence: float
    #: "skipped": not asked, its ``ask_if`` did not hold (never handed over).
    status: Literal["answered", "unanswered", "skipped"]
    attempts: int
    source: Source | None = None
    critical: bool = False


@dataclass(frozen=True)
class Escalate:
    """Hand the caller to a person: ``transfer`` on telephony, ``message`` on the browser."""

    reason: EscalationReason
    mode: Literal["transfer", "message"]
    question_id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class HangUp:
    """End the call; sent once the last prompt has played."""

    reason: str


@dataclass(frozen=True)
class Finished:
    """The call's outcome, sent once as the last action."""

    outcome: Outcome
    reason: str
    answers: tuple[RecordAnswer, ...]
    escalation: str | None = None
    #: More about the outcome: ``callback_at`` (ISO 8601 with offset, or None when no time
    #: was said) for ``callback_requested``.
    detail: Mapping[str, Any] = field(default_factory=dict)


Action = Speak | RecordAnswer | Escalate | HangUp | Finished
