"""The questionnaire dialog: a pure state machine, ``step(state, event) -> (state, actions)``.

No I/O, no clock, no trio: the call session feeds it events (what the caller said or keyed,
which prompt finished playing, which answer timer ran out, a hang-up) and carries out the
actions it returns (speak, record, escalate, hang up). Flow::

    greeting (asks consent) --yes--> question 1 .. question n --> closing --> HangUp
        |no -> consent_refused prompt -> HangUp     critical answer / "a person" / 0 key
        |unclear x retries -> goodbye -> HangUp       -> escalation prompt -> Escalate
                                                    "stop" -> stopped prompt -> HangUp

A telephony transfer (``Escalate(mode="transfer")``) is carried out by the session, which then
reports :class:`TransferDone` (the call ends ``escalated``) or :class:`TransferFailed` (the
caller hears that a person will call back, then HangUp; outcome ``transfer_failed``, the
escalation kept): a caller promised a person is never just cut off.

Every question re-prompts on silence (:class:`NoResponse`) or an answer it cannot use, up to
its ``max_retries``, then records "unanswered" and goes on; ``escalate_after_unanswered``
unanswered questions in a row hand the call to a person. An answer understood with less
confidence than the template's ``confirm_below`` is read back and must be confirmed. Prompt
ids are unique per call, so a late :class:`PromptPlayed` or :class:`NoResponse` for an older
prompt is ignored, as is every event after the end.

Keypad: a question's own ``keypad`` mapping wins; then its type's digits (yes/no: the
template's ``yes_no_keypad``, default 1 = yes, 2 = no; multiple choice: 1..n pick options in
order; rating/numeric: the digits are the number, ended by ``#``, by silence, or as soon as
no further digit could fit the range); then the global keys (default 0 = person, * = repeat).
A rating question therefore reads 0 as the rating zero, not as "a person".

The dialog never keeps a transcript: answers are recorded as values ("yes", 7, an option id)
except for open-text questions, whose text is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from hana_voice.questionnaire.dialog_messages import (
    CHANNELS,
    Action,
    CallerHungUp,
    Channel,
    Escalate,
    EscalationReason,
    Event,
    Expectation,
    Finished,
    HangUp,
    KeyPressed,
    NoResponse,
    Outcome,
    PromptPlayed,
    RecordAnswer,
    Source,
    Speak,
    TransferDone,
    TransferFailed,
    UserSaid,
)
from hana_voice.questionnaire.template import AnswerValue, Prompt, Question, Questionnaire
from hana_voice.questionnaire.understanding import (
    Interpretation,
    expected_phrases,
    interpret,
    spoken_answer,
)

Phase = Literal["consent", "question", "confirm", "ending", "transferring", "ended"]
#: Repeats asked for on one step before a further request counts as a failed try.
MAX_REPEATS = 3
_DIGITS = tuple("0123456789")
_CHOICE_KEYS = tuple("123456789")

__all__ = [
    "CHANNELS", "MAX_REPEATS", "Action", "CallerHungUp", "Channel", "DialogState", "Escalate",
    "EscalationReason", "Event", "Expectation", "Finished", "HangUp", "KeyPressed",
    "NoResponse", "Outcome", "Pending", "PromptPlayed", "RecordAnswer", "Source", "Speak",
    "Step", "TransferDone", "TransferFailed", "UserSaid", "start", "step",
]  # fmt: skip

Step = tuple["DialogState", tuple[Action, ...]]

# ---------------------------------------------------------------- state


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

    @property
    def question(self) -> Question:
        return self.questionnaire.questions[min(self.index, len(self.questionnaire.questions) - 1)]

    @property
    def ended(self) -> bool:
        return self.phase == "ended"


def start(questionnaire: Questionnaire, channel: Channel) -> Step:
    """Begin a call: greet and ask for consent."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
    return _ask_consent(DialogState(questionnaire, channel), None)


def step(state: DialogState, event: Event) -> Step:
    """Advance on one event. Events that make no sense in the current state are ignored."""
    if state.phase == "ended":
        return state, ()
    if isinstance(event, CallerHungUp):
        ending = state.phase in ("ending", "transferring")
        outcome = state.outcome if ending and state.outcome else "incomplete"
        reason = state.reason if outcome != "incomplete" else "caller_hung_up"
        return _finished(replace(state, outcome=outcome, reason=reason), ())
    if state.phase == "transferring":
        return _transfer_result(state, event)
    if state.phase == "ending":
        if isinstance(event, PromptPlayed | NoResponse) and event.prompt_id == state.prompt_id:
            if isinstance(state.final, Escalate) and state.final.mode == "transfer":
                # The session transfers, then says how it went (TransferDone/TransferFailed).
                return replace(state, phase="transferring"), (state.final,)
            return _finished(state, (state.final,) if state.final else ())
        return state, ()
    if isinstance(event, NoResponse):
        if event.prompt_id != state.prompt_id:
            return state, ()
        if state.keypad_buffer:
            return _keyed_number(state)
        return _failed(state, "no_response")
    if isinstance(event, KeyPressed):
        return _key(state, event.digit)
    if isinstance(event, UserSaid):
        return _said(state, event)
    return state, ()  # PromptPlayed while waiting for an answer: the session's timer starts


# ---------------------------------------------------------------- answers


def _said(state: DialogState, event: UserSaid) -> Step:
    if not event.text.strip():
        return state, ()  # an empty final transcript is noise; the answer timer decides
    asr = min(max(event.confidence, 0.0), 1.0)
    if state.phase == "question":
        q = state.question
        understood = interpret(event.text, q.type, q.options)
    else:
        understood = interpret(event.text, "yes_no")
    if understood.intent is not None:
        return _intent(state, understood.intent)
    return _answer(state, understood, asr)


def _answer(state: DialogState, understood: Interpretation, asr: float) -> Step:
    value, confidence = understood.value, round(understood.confidence * asr, 3)
    if state.phase == "consent":
        if value == "yes":
            return _ask(state, 0, None)
        if value == "no":
            return _closing(state, "consent_refused", "consent_refused", HangUp("consent_refused"))
        return _failed(state, "not_understood")
    if state.phase == "confirm":
        return _confirmed(state, value)
    if value is None or not state.question.accepts(value):
        return _failed(state, "not_understood")
    return _accept(state, value, confidence, "voice")


def _key(state: DialogState, digit: str) -> Step:
    q, template = state.question, state.questionnaire
    if state.phase in ("consent", "confirm"):
        if digit in template.yes_no_keypad:
            understood = Interpretation(template.yes_no_keypad[digit], None, 1.0)
            return _answer(state, understood, 1.0)
    elif digit in q.keypad:
        return _accept(state, q.keypad[digit], 1.0, "keypad")
    elif q.type in ("rating", "numeric") and not q.keypad and digit in _DIGITS:
        return _keyed_digit(state, digit)
    elif q.type in ("rating", "numeric") and digit == "#" and state.keypad_buffer:
        return _keyed_number(state)
    elif q.type == "yes_no" and not q.keypad and digit in template.yes_no_keypad:
        return _accept(state, template.yes_no_keypad[digit], 1.0, "keypad")
    elif q.type == "multiple_choice" and not q.keypad and digit in _CHOICE_KEYS[: len(q.options)]:
        return _accept(state, q.options[int(digit) - 1].id, 1.0, "keypad")
    if digit in template.keypad:
        intent = template.keypad[digit]
        return _intent(state, intent)
    return _failed(state, "not_understood")


def _keyed_digit(state: DialogState, digit: str) -> Step:
    entry = (state.keypad_buffer + digit).lstrip("0") or "0"
    high = state.question.maximum
    # Done as soon as another digit could only overshoot the range ("0", "2".."9" for 0-10).
    if entry == "0" or (high is not None and int(entry) * 10 > high):
        return _keyed_number(replace(state, keypad_buffer=entry))
    return replace(state, keypad_buffer=entry), ()


def _keyed_number(state: DialogState) -> Step:
    value = int(state.keypad_buffer)
    state = replace(state, keypad_buffer="")
    if not state.question.accepts(value):
        return _failed(state, "not_understood")
    return _accept(state, value, 1.0, "keypad")


def _intent(state: DialogState, intent: str) -> Step:
    if intent == "human":
        return _escalate(state, "caller_request")
    if intent == "stop":
        return _closing(state, "stopped", "stopped", HangUp("stopped"))
    if state.repeats >= MAX_REPEATS:
        return _failed(state, "not_understood")
    state = replace(state, repeats=state.repeats + 1, keypad_buffer="")
    if state.phase == "consent":
        return _ask_consent(state, None)
    if state.phase == "confirm" and state.pending is not None:
        return _ask_confirmation(state, state.pending)
    return _ask(state, state.index, None, fresh=False)


def _accept(state: DialogState, value: AnswerValue, confidence: float, source: Source) -> Step:
    doubtful = confidence < state.questionnaire.confirm_below
    if source == "voice" and state.question.type != "open_text" and doubtful:
        return _ask_confirmation(replace(state, repeats=0), Pending(value, confidence))
    return _record(state, value, confidence, source)


def _confirmed(state: DialogState, value: AnswerValue | None) -> Step:
    if value == "yes" and state.pending is not None:
        return _record(state, state.pending.value, state.pending.confidence, "voice")
    return _failed(replace(state, phase="question", pending=None), "not_understood")


def _record(state: DialogState, value: AnswerValue, confidence: float, source: Source) -> Step:
    q = state.question
    critical = q.critical.matches(value)
    record = RecordAnswer(
        q.id, q.order, value, confidence, "answered", state.attempts + 1, source, critical
    )
    state = replace(
        state, answers=(*state.answers, record), unanswered_streak=0, pending=None, phase="question"
    )
    if critical:
        after, actions = _escalate(state, "critical_answer")
        return after, (record, *actions)
    after, actions = _advance(state)
    return after, (record, *actions)


def _failed(state: DialogState, kind: Literal["no_response", "not_understood"]) -> Step:
    q, template = state.question, state.questionnaire
    attempts = state.attempts + 1
    state = replace(state, attempts=attempts, keypad_buffer="")
    prefix = template.prompts.get(kind)
    if state.phase == "consent":
        if attempts > template.max_retries:
            return _closing(state, "consent_refused", "incomplete", HangUp("consent_unclear"))
        return _ask_consent(state, prefix)
    if attempts <= q.max_retries:
        return _ask(
            replace(state, phase="question", pending=None), state.index, prefix, fresh=False
        )
    record = RecordAnswer(q.id, q.order, None, 0.0, "unanswered", attempts)
    streak = state.unanswered_streak + 1
    state = replace(state, answers=(*state.answers, record), unanswered_streak=streak, pending=None)
    limit = template.escalate_after_unanswered
    after, actions = (
        _escalate(state, "repeated_failures") if limit and streak >= limit else _advance(state)
    )
    return after, (record, *actions)


# ---------------------------------------------------------------- prompts


def _advance(state: DialogState) -> Step:
    index = state.index + 1
    if index >= len(state.questionnaire.questions):
        return _closing(replace(state, index=index), "closing", "completed", HangUp("completed"))
    return _ask(state, index, None)


def _speak(
    state: DialogState,
    name: str,
    parts: Sequence[Prompt | None],
    expects: Expectation | None,
    interruptible: bool = True,
) -> Step:
    seq = state.seq + 1
    prompt_id = f"{seq}:{name}"
    present = [p for p in parts if p is not None]
    speak = Speak(
        prompt_id,
        " ".join(p.spoken for p in present),
        " ".join(p.text for p in present),
        interruptible,
        expects,
    )
    return replace(state, seq=seq, prompt_id=prompt_id), (speak,)


def _ask_consent(state: DialogState, prefix: Prompt | None) -> Step:
    template = state.questionnaire
    expects = Expectation("consent", "yes_no", _YES_NO_PHRASES, template.response_timeout)
    return _speak(replace(state, phase="consent"), "greeting", (prefix, template.greeting), expects)


def _ask(state: DialogState, index: int, prefix: Prompt | None, fresh: bool = True) -> Step:
    q = state.questionnaire.questions[index]
    if fresh:
        state = replace(state, attempts=0, repeats=0)
    state = replace(state, phase="question", index=index, pending=None, keypad_buffer="")
    expects = Expectation(q.id, q.type, tuple(expected_phrases(q)), q.response_timeout)
    return _speak(state, f"q:{q.id}", (prefix, q.prompt), expects)


def _ask_confirmation(state: DialogState, pending: Pending) -> Step:
    q, template = state.question, state.questionnaire
    heard = spoken_answer(q, pending.value)
    shown = str(pending.value) if isinstance(pending.value, int) else heard
    if q.type == "multiple_choice" and isinstance(pending.value, str):
        option = q.option(pending.value)
        shown = option.text if option else shown
    confirmation = template.prompts.confirmation
    prompt = Prompt(
        confirmation.text.replace("{answer}", shown),
        confirmation.spoken.replace("{answer}", heard),
    )
    expects = Expectation(f"confirm:{q.id}", "yes_no", _YES_NO_PHRASES, q.response_timeout)
    state = replace(state, phase="confirm", pending=pending)
    return _speak(state, f"confirm:{q.id}", (prompt,), expects)


def _escalate(state: DialogState, reason: EscalationReason) -> Step:
    question_id = state.question.id if state.phase != "consent" else None
    prompts = state.questionnaire.prompts
    state = replace(state, escalation=reason)
    if state.channel == "telephony":
        final = Escalate(reason, "transfer", question_id)
        return _closing(state, "escalation_transfer", "escalated", final, reason=reason)
    message = prompts.escalation_message
    after, actions = _closing(state, "escalation_message", "escalated", HangUp("escalated"), reason)
    return after, (*actions, Escalate(reason, "message", question_id, message.text))


def _transfer_result(state: DialogState, event: Event) -> Step:
    """A promised transfer either happened or the caller hears that a person will call back."""
    if isinstance(event, TransferDone):
        return _finished(state, ())
    if isinstance(event, TransferFailed):
        final = HangUp("transfer_failed")
        return _closing(state, "transfer_failed", "transfer_failed", final, reason=state.reason)
    return state, ()


def _closing(
    state: DialogState,
    prompt_name: str,
    outcome: Outcome,
    final: Escalate | HangUp,
    reason: str | None = None,
) -> Step:
    prompts = state.questionnaire.prompts
    prompt = state.questionnaire.closing if prompt_name == "closing" else prompts.get(prompt_name)
    state = replace(
        state,
        phase="ending",
        outcome=outcome,
        reason=reason or final.reason,
        final=final,
        pending=None,
        keypad_buffer="",
    )
    return _speak(state, prompt_name, (prompt,), None, interruptible=False)


def _finished(state: DialogState, actions: tuple[Action, ...]) -> Step:
    outcome = state.outcome or "incomplete"
    done = Finished(outcome, state.reason, state.answers, state.escalation)
    return replace(state, phase="ended", outcome=outcome), (*actions, done)


_YES_NO_PHRASES = tuple(expected_phrases(Question(id="consent", order=0, text="", type="yes_no")))
