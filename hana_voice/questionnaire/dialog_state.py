"""The questionnaire dialog's state: frozen, replaced on every step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hana_voice.questionnaire.callback_time import DEFAULT_TIMEZONE
from hana_voice.questionnaire.dialog_messages import Action, Channel, Escalate, HangUp, RecordAnswer
from hana_voice.questionnaire.outcomes import Outcome
from hana_voice.questionnaire.template import AnswerValue, Question, Questionnaire

Phase = Literal["identity", "consent", "question", "confirm", "ending", "transferring", "ended"]
Step = tuple["DialogState", tuple[Action, ...]]


@dataclass(frozen=True)
class Pending:
    """An answer waiting for the caller's confirmation."""

    value: AnswerValue
    confidence: float


@dataclass(frozen=True)
class DialogState:
    questionnaire: Questionnaire
    channel: Channel
    phase: Phase = "consent"
    index: int = 0
    prompt_id: str = ""
    seq: int = 0
    attempts: int = 0
    repeats: int = 0
    keypad_buffer: str = ""
    pending: Pending | None = None
    unanswered_streak: int = 0
    answers: tuple[RecordAnswer, ...] = ()
    outcome: Outcome | None = None
    reason: str = ""
    escalation: str | None = None
    final: Escalate | HangUp | None = None
    #: Placeholder values from the call's context (patient data: never logged).
    values: Mapping[str, str] = field(default_factory=dict)
    #: When the call started (aware) and the hospital's time zone, for call-back times.
    started_at: datetime | None = None
    zone: str = DEFAULT_TIMEZONE
    #: Whether the caller has said or keyed anything at all.
    heard: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> Question:
        return self.questionnaire.questions[min(self.index, len(self.questionnaire.questions) - 1)]

    @property
    def ended(self) -> bool:
        return self.phase == "ended"
