"""The questionnaire dialog: a pure state machine, ``step(state, event) -> (state, actions)``.

No I/O, no clock, no trio: the call session feeds it events (what the caller said or keyed,
which prompt finished playing, which answer timer ran out, a hang-up) and carries out the
actions it returns (speak, record, escalate, hang up). Flow::

    [identity: "am I speaking with {patient_name}?"] --yes--> greeting (asks consent)
        |no -> wrong_person   |not here / later -> callback_requested
    greeting --yes--> question 1 .. question n --> closing --> HangUp       (completed)
        |no / "I don't want" -> consent_refused prompt -> HangUp
        |unclear x retries -> goodbye -> HangUp   (no_response, or partial once heard)
    any step: critical answer / "a person" / 0 key -> escalation prompt -> Escalate
              "stop" -> stopped     "never call again" -> do_not_call
              "busy, call me later" -> callback_requested (with the resolved time)
              "who is this?" -> who calls (and why, after the identity check), then asks again

The identity check runs when the template has ``identity_check`` (the default) and the call's
context names the patient; before it is confirmed nothing is said about health or department.
A question whose ``ask_if`` does not hold on the answers so far is recorded "skipped" and not
asked. Every call ends with exactly one outcome of
:data:`~hana_voice.questionnaire.outcomes.OUTCOMES`; a hang-up before the end is
``no_response`` when nothing was heard from the caller, else ``partial``.

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

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from hana_voice.questionnaire import dialog_prompts as say
from hana_voice.questionnaire.callback_time import DEFAULT_TIMEZONE, resolve_callback
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
    PromptPlayed,
    RecordAnswer,
    Source,
    Speak,
    TransferDone,
    TransferFailed,
    UserSaid,
)
from hana_voice.questionnaire.dialog_state import DialogState, Pending, Step
from hana_voice.questionnaire.outcomes import Outcome
from hana_voice.questionnaire.personal import personal_values
from hana_voice.questionnaire.template import AnswerValue, Questionnaire
from hana_voice.questionnaire.understanding import Interpretation, interpret

#: Repeats asked for on one step before a further request counts as a failed try.
MAX_REPEATS = 3
_DIGITS = tuple("0123456789")
_CHOICE_KEYS = tuple("123456789")

__all__ = [
    "CHANNELS", "MAX_REPEATS", "Action", "CallerHungUp", "Channel", "DialogState", "Escalate",
    "EscalationReason", "Event", "Expectation", "Finished", "HangUp", "KeyPressed",
    "NoResponse", "Outcome", "Pending", "PromptPlayed", "RecordAnswer", "Source", "Speak",
    "Step", "TransferDone", "TransferFailed", "UserSaid", "interrupted", "start", "step",
]  # fmt: skip


def start(
    questionnaire: Questionnaire,
    channel: Channel,
    *,
    context: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
    zone: str = DEFAULT_TIMEZONE,
) -> Step:
    """Begin a call: check who answers (when the context names the patient), else greet.

    ``context`` is the call's set-up context (placeholder values); ``started_at`` (aware) and
    ``zone`` resolve call-back times ("بعد ساعة"); without ``started_at`` none is resolved.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
    values = personal_values(context or {})
    state = DialogState(questionnaire, channel, values=values, started_at=started_at, zone=zone)
    if questionnaire.identity_check and "patient_name" in values:
        return say.ask_identity(state, None)
    return say.ask_consent(state, None)


def interrupted(state: DialogState) -> Finished:
    """The outcome of a call that ends now, from outside (hang-up, drop, shutdown)."""
    if state.phase == "ended":
        return Finished(_outcome(state), state.reason, state.answers, state.escalation,
                        state.detail)  # fmt: skip
    _, actions = step(state, CallerHungUp())
    done = actions[-1]
    assert isinstance(done, Finished)
    return done


def _outcome(state: DialogState) -> Outcome:
    if state.outcome is not None:
        return state.outcome
    return "partial" if state.heard else "no_response"


def step(state: DialogState, event: Event) -> Step:
    """Advance on one event. Events that make no sense in the current state are ignored."""
    if state.phase == "ended":
        return state, ()
    if isinstance(event, CallerHungUp):
        if state.phase in ("ending", "transferring") and state.outcome:
            return _finished(state, ())
        outcome: Outcome = "partial" if state.heard else "no_response"
        return _finished(replace(state, outcome=outcome, reason="caller_hung_up"), ())
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
        return _key(replace(state, heard=True), event.digit)
    if isinstance(event, UserSaid):
        return _said(state, event)
    return state, ()  # PromptPlayed while waiting for an answer: the session's timer starts


# ---------------------------------------------------------------- answers


def _said(state: DialogState, event: UserSaid) -> Step:
    if not event.text.strip():
        return state, ()  # an empty final transcript is noise; the answer timer decides
    state = replace(state, heard=True)
    asr = min(max(event.confidence, 0.0), 1.0)
    if state.phase == "question":
        q = state.question
        understood = interpret(event.text, q.type, q.options)
    else:
        understood = interpret(event.text, "identity" if state.phase == "identity" else "yes_no")
    if understood.intent == "stop" and understood.do_not_call:
        return _closing(state, "do_not_call", "do_not_call", HangUp("do_not_call"))
    if understood.intent == "callback":
        return _callback(state, event.text)
    if understood.intent is not None:
        return _intent(state, understood.intent)
    return _answer(state, understood, asr)


def _callback(state: DialogState, text: str) -> Step:
    at = None
    if state.started_at is not None:
        at = resolve_callback(text, state.started_at, state.zone)
    state = replace(state, detail={"callback_at": at.isoformat() if at else None})
    return _closing(state, "callback", "callback_requested", HangUp("callback_requested"))


def _answer(state: DialogState, understood: Interpretation, asr: float) -> Step:
    value, confidence = understood.value, round(understood.confidence * asr, 3)
    if state.phase == "identity":
        if value == "yes":
            return say.ask_consent(replace(state, attempts=0, repeats=0), None)
        if value == "no":
            return _closing(state, "wrong_person", "wrong_person", HangUp("wrong_person"))
        return _failed(state, "not_understood")
    if state.phase == "consent":
        if value == "yes":
            return say.ask(state, 0, None)
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
    if state.phase in ("identity", "consent", "confirm"):
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
        if state.phase in ("identity", "consent"):
            # "I don't want" before the questions is a refusal of the call.
            return _closing(state, "consent_refused", "consent_refused", HangUp("consent_refused"))
        return _closing(state, "stopped", "stopped", HangUp("stopped"))
    if state.repeats >= MAX_REPEATS:
        return _failed(state, "not_understood")
    state = replace(state, repeats=state.repeats + 1, keypad_buffer="")
    # "Who is this?": say who calls (and why, once the identity is confirmed), then ask again;
    # not a failed try. Anything else here asked for a repeat.
    prefix = None
    if intent == "identify":
        name = "identify_identity" if state.phase == "identity" else "identify"
        prefix = state.questionnaire.prompts.get(name)
    if state.phase == "identity":
        return say.ask_identity(state, prefix)
    if state.phase == "consent":
        return say.ask_consent(state, prefix)
    if state.phase == "confirm" and state.pending is not None:
        return say.ask_confirmation(state, state.pending, prefix)
    return say.ask(state, state.index, prefix, fresh=False)


def _accept(state: DialogState, value: AnswerValue, confidence: float, source: Source) -> Step:
    doubtful = confidence < state.questionnaire.confirm_below
    if source == "voice" and state.question.type != "open_text" and doubtful:
        return say.ask_confirmation(replace(state, repeats=0), Pending(value, confidence))
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
    if state.phase in ("identity", "consent"):
        if attempts > template.max_retries:
            outcome: Outcome = "partial" if state.heard else "no_response"
            return _closing(state, "consent_refused", outcome, HangUp(f"{state.phase}_unclear"))
        if state.phase == "identity":
            return say.ask_identity(state, prefix)
        return say.ask_consent(state, prefix)
    if attempts <= q.max_retries:
        return say.ask(
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
    """Ask the next question whose ``ask_if`` holds; those passed over are recorded skipped."""
    questions = state.questionnaire.questions
    answered = {a.question_id: a.response for a in state.answers
                if a.status == "answered" and a.response is not None}  # fmt: skip
    skipped: list[RecordAnswer] = []
    index = state.index + 1
    while index < len(questions) and questions[index].ask_if is not None:
        condition = questions[index].ask_if
        assert condition is not None
        if condition.holds(answered):
            break
        q = questions[index]
        skipped.append(RecordAnswer(q.id, q.order, None, 0.0, "skipped", 0))
        index += 1
    state = replace(state, answers=(*state.answers, *skipped))
    if index >= len(questions):
        after, actions = _closing(
            replace(state, index=index), "closing", "completed", HangUp("completed")
        )
    else:
        after, actions = say.ask(state, index, None)
    return after, (*skipped, *actions)


def _escalate(state: DialogState, reason: EscalationReason) -> Step:
    question_id = state.question.id if state.phase not in ("identity", "consent") else None
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
    return say.speak(state, prompt_name, (prompt,), None, interruptible=False)


def _finished(state: DialogState, actions: tuple[Action, ...]) -> Step:
    outcome = _outcome(state)
    done = Finished(outcome, state.reason, state.answers, state.escalation, state.detail)
    return replace(state, phase="ended", outcome=outcome), (*actions, done)
