"""Every path through the questionnaire dialog."""

from __future__ import annotations

import dataclasses

import pytest

from hana_voice.questionnaire import Questionnaire
from hana_voice.questionnaire.dialog import (
    MAX_REPEATS,
    CallerHungUp,
    Escalate,
    Event,
    Finished,
    HangUp,
    KeyPressed,
    NoResponse,
    PromptPlayed,
    RecordAnswer,
    Speak,
    TransferDone,
    TransferFailed,
    UserSaid,
    start,
    step,
)
from tests.questionnaire.driving import Call, of


def consented(q: Questionnaire, channel: str = "telephony") -> Call:
    call = Call(q, channel)  # type: ignore[arg-type]  # tests pass both channel literals
    call.played()
    call.send(UserSaid("نعم"))
    return call


def records(call: Call) -> list[RecordAnswer]:
    return of(RecordAnswer, call.actions)


def finished(call: Call) -> Finished:
    (done,) = of(Finished, call.actions)
    return done


# ---------------------------------------------------------------- consent


def test_start_greets_and_asks_consent(mini: Questionnaire) -> None:
    state, actions = start(mini, "telephony")
    (speak,) = actions
    assert isinstance(speak, Speak) and speak.text == mini.greeting.spoken
    assert speak.expects is not None and speak.expects.question_id == "consent"
    assert speak.expects.answer_type == "yes_no" and "[unk]" in speak.expects.phrases
    assert speak.expects.response_timeout == mini.response_timeout
    assert state.phase == "consent" and state.prompt_id == speak.prompt_id


def test_invalid_channel(mini: Questionnaire) -> None:
    with pytest.raises(ValueError, match="channel"):
        start(mini, "fax")  # type: ignore[arg-type]  # the wrong value is the point


@pytest.mark.parametrize("event", [UserSaid("ايوه تفضل"), KeyPressed("1")])
def test_consent_yes_asks_the_first_question(mini: Questionnaire, event: object) -> None:
    call = Call(mini)
    new = call.send(event)  # type: ignore[arg-type]  # both are events
    (speak,) = of(Speak, new)
    assert speak.expects is not None and speak.expects.question_id == "chest"
    assert speak.text == mini.questions[0].prompt.spoken


@pytest.mark.parametrize("event", [UserSaid("لا شكرا"), KeyPressed("2")])
def test_consent_no_ends_politely(mini: Questionnaire, event: object) -> None:
    call = Call(mini)
    new = call.send(event)  # type: ignore[arg-type]  # both are events
    assert call.last_speak.text == mini.prompts.consent_refused.spoken
    assert call.last_speak.expects is None and not call.last_speak.interruptible
    assert not of(HangUp, new)  # not before the goodbye has played
    done = call.played()
    assert done[0] == HangUp("consent_refused")
    assert finished(call).outcome == "consent_refused" and finished(call).answers == ()


def test_consent_unclear_reasks_then_gives_up(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(UserSaid("مدري"))
    assert call.last_speak.text.startswith(mini.prompts.not_understood.spoken)
    assert call.last_speak.text.endswith(mini.greeting.spoken)
    call.silence()
    assert call.last_speak.text.startswith(mini.prompts.no_response.spoken)
    call.send(UserSaid("الطقس"))  # third failure: max_retries is 2
    assert call.last_speak.expects is None
    call.played()
    assert finished(call).outcome == "partial" and finished(call).reason == "consent_unclear"


# ---------------------------------------------------------------- answers


def test_every_type_answered_by_voice(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا"), UserSaid("تلاتة"), UserSaid("نفس الحالة"), UserSaid("١٢"))
    call.send(UserSaid("أحتاج موعد مع طبيب القلب"))
    assert call.last_speak.text == mini.closing.spoken
    call.played()
    got = [(r.question_id, r.response, r.source, r.status) for r in records(call)]
    assert got == [
        ("chest", "no", "voice", "answered"),
        ("pain", 3, "voice", "answered"),
        ("state", "same", "voice", "answered"),
        ("visits", 12, "voice", "answered"),
        ("notes", "أحتاج موعد مع طبيب القلب", "voice", "answered"),
    ]
    assert [r.question_order for r in records(call)] == [1, 2, 3, 4, 5]
    assert of(HangUp, call.actions) == [HangUp("completed")]
    assert finished(call).outcome == "completed" and len(finished(call).answers) == 5


def test_every_type_answered_by_keypad(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(KeyPressed("1"), KeyPressed("2"), KeyPressed("5"), KeyPressed("2"))
    call.send(KeyPressed("1"), KeyPressed("2"), KeyPressed("#"))
    call.send(UserSaid("لا شيء"))
    got = [(r.response, r.source, r.confidence) for r in records(call)]
    assert got[:4] == [("no", "keypad", 1.0), (5, "keypad", 1.0), ("same", "keypad", 1.0),
                       (12, "keypad", 1.0)]  # fmt: skip


def test_rating_keypad_entry(mini: Questionnaire) -> None:
    def pain_after(*keys: str, silence: bool = False) -> object:
        call = consented(mini)
        call.send(UserSaid("لا"))
        call.send(*(KeyPressed(k) for k in keys))
        if silence:
            call.silence()
        return next((r.response for r in records(call) if r.question_id == "pain"), "none")

    assert pain_after("0") == 0  # 0 is a rating here, not "a person"
    assert pain_after("1", "0") == 10
    assert pain_after("1", "#") == 1
    assert pain_after("1", silence=True) == 1
    assert pain_after("1") == "none"  # still waiting for a possible second digit
    assert pain_after("7") == 7


def test_question_keypad_mapping_wins(mini: Questionnaire) -> None:
    chest = dataclasses.replace(mini.questions[0], keypad={"9": "no"})
    q = dataclasses.replace(mini, questions=(chest, *mini.questions[1:]))
    call = consented(q)
    call.send(KeyPressed("9"))
    assert records(call)[0].response == "no"
    call2 = consented(q)
    call2.send(KeyPressed("1"))  # the default yes/no keys are off once a mapping is given
    assert not records(call2) and call2.state.attempts == 1


def test_unknown_key_and_out_of_range_are_not_understood(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(KeyPressed("7"))
    assert call.last_speak.text.startswith(mini.prompts.not_understood.spoken)
    call.send(UserSaid("لا"), UserSaid("٣"), UserSaid("أفضل"), UserSaid("٥٠"))
    assert call.last_speak.expects is not None and call.last_speak.expects.question_id == "visits"
    assert call.state.attempts == 1


def test_retries_then_unanswered_then_next(mini: Questionnaire) -> None:
    call = consented(mini)
    call.silence()
    assert call.last_speak.text.startswith(mini.prompts.no_response.spoken)
    new = call.send(UserSaid("الطقس جميل"))
    (record,) = of(RecordAnswer, new)
    assert record == RecordAnswer("chest", 1, None, 0.0, "unanswered", 2)
    assert call.last_speak.expects is not None and call.last_speak.expects.question_id == "pain"


def test_repeated_failures_escalate(mini: Questionnaire) -> None:
    call = consented(mini)
    for _ in range(4):
        call.silence()
    assert [r.status for r in records(call)] == ["unanswered", "unanswered"]
    assert call.last_speak.text == mini.prompts.escalation_transfer.spoken
    call.played()
    assert of(Escalate, call.actions) == [Escalate("repeated_failures", "transfer", "pain")]
    call.send(TransferDone())
    assert finished(call).outcome == "escalated"
    assert finished(call).escalation == "repeated_failures"


def test_an_answer_resets_the_unanswered_streak(mini: Questionnaire) -> None:
    call = consented(mini)
    call.silence(), call.silence()
    call.send(UserSaid("٣"))
    call.silence(), call.silence()
    assert [r.status for r in records(call)] == ["unanswered", "answered", "unanswered"]
    assert not of(Escalate, call.actions)


# ---------------------------------------------------------------- repeat, confirm


@pytest.mark.parametrize("event", [UserSaid("عيد السؤال لو سمحت"), KeyPressed("*")])
def test_repeat_says_the_question_again(mini: Questionnaire, event: object) -> None:
    call = consented(mini)
    first = call.last_speak
    call.send(event)  # type: ignore[arg-type]  # both are events
    again = call.last_speak
    assert again.text == first.text and again.prompt_id != first.prompt_id
    assert call.state.attempts == 0
    call.send(NoResponse(first.prompt_id))  # the old prompt's timer: stale, ignored
    assert call.last_speak == again


def test_repeat_in_consent_and_too_many_repeats(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(KeyPressed("*"))
    assert call.last_speak.text == mini.greeting.spoken
    call = consented(mini)
    for _ in range(MAX_REPEATS):
        call.send(KeyPressed("*"))
    call.send(KeyPressed("*"))
    assert call.state.attempts == 1


def test_low_confidence_is_confirmed(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("نعم", confidence=0.5))
    speak = call.last_speak
    assert "نَعَم" in speak.text and "نعم" in speak.display_text
    assert speak.expects is not None and speak.expects.question_id == "confirm:chest"
    assert not records(call)
    call.send(UserSaid("لا"))  # "that's wrong": ask again
    assert call.last_speak.expects is not None and call.last_speak.expects.question_id == "chest"
    call.send(UserSaid("ثمانية", confidence=0.4))  # a number is no answer to yes/no
    call.send(UserSaid("لا"))
    assert records(call)[0].status == "unanswered"


def test_confirmed_answer_is_recorded_with_its_confidence(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا"), UserSaid("٣", confidence=0.5))
    call.send(KeyPressed("*"))  # repeat the confirmation
    assert call.last_speak.expects is not None
    assert call.last_speak.expects.question_id == "confirm:pain"
    call.send(KeyPressed("1"))
    assert records(call)[1] == RecordAnswer("pain", 2, 3, 0.475, "answered", 1, "voice", False)
    call.send(UserSaid("أسوأ", confidence=0.5))
    assert "أسوأ" in call.last_speak.display_text


def test_weak_words_are_confirmed(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("شوية"))
    assert call.state.phase == "confirm"


def test_no_confirmation_when_the_template_does_not_ask(mini: Questionnaire) -> None:
    call = consented(dataclasses.replace(mini, confirm_below=0.0))
    call.send(UserSaid("شوية", confidence=0.1))
    assert records(call)[0].response == "yes"


# ---------------------------------------------------------------- escalation, stop, hang-up


def test_critical_answer_transfers_on_telephony(mini: Questionnaire) -> None:
    call = consented(mini)
    new = call.send(UserSaid("ايوه"))
    assert of(RecordAnswer, new)[0].critical
    assert not of(Escalate, new)  # after the escalation prompt has played
    assert call.last_speak.text == mini.prompts.escalation_transfer.spoken
    call.send(UserSaid("نعم"), KeyPressed("1"))  # ignored while the prompt plays
    assert call.played() == [Escalate("critical_answer", "transfer", "chest")]
    assert call.state.phase == "transferring"
    call.send(UserSaid("نعم"), KeyPressed("0"), PromptPlayed(call.state.prompt_id))  # ignored
    assert call.send(TransferDone()) == [finished(call)]
    assert finished(call).outcome == "escalated"


def test_a_failed_transfer_promises_a_call_back(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("ايوه"))
    call.played()
    new = call.send(TransferFailed())
    assert call.last_speak.text == mini.prompts.transfer_failed.spoken
    assert not call.last_speak.interruptible and not of(HangUp, new)
    done = call.played()
    assert done == [HangUp("transfer_failed"), finished(call)]
    result = finished(call)
    assert (result.outcome, result.reason, result.escalation) == (
        "transfer_failed",
        "critical_answer",
        "critical_answer",
    )
    assert [r.response for r in result.answers] == ["yes"] and result.answers[0].critical


def test_hanging_up_during_a_transfer_keeps_the_escalation(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(KeyPressed("0"))
    call.played()
    call.send(CallerHungUp())
    assert finished(call).outcome == "escalated"
    assert finished(call).escalation == "caller_request"


def test_critical_rating_shows_a_message_on_the_browser(mini: Questionnaire) -> None:
    call = consented(mini, "browser")
    call.send(UserSaid("لا"))
    new = call.send(KeyPressed("9"))
    message = mini.prompts.escalation_message
    assert Escalate("critical_answer", "message", "pain", message.text) in new
    call.played()
    assert of(HangUp, call.actions) == [HangUp("escalated")]
    assert finished(call).outcome == "escalated" and records(call)[-1].critical


def test_critical_choice(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا"), UserSaid("٢"), UserSaid("تعبان أسوأ"))
    assert call.state.phase == "ending" and call.state.escalation == "critical_answer"


@pytest.mark.parametrize("event", [UserSaid("ابي اكلم الدكتور"), KeyPressed("0")])
@pytest.mark.parametrize("at_consent", [True, False])
def test_person_request(mini: Questionnaire, event: object, at_consent: bool) -> None:
    call = Call(mini) if at_consent else consented(mini)
    call.send(event)  # type: ignore[arg-type]  # both are events
    call.played()
    (escalate,) = of(Escalate, call.actions)
    assert escalate.reason == "caller_request" and escalate.mode == "transfer"
    assert escalate.question_id == (None if at_consent else "chest")


def test_stop_request(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا"), UserSaid("وقف المكالمة"))
    assert call.last_speak.text == mini.prompts.stopped.spoken
    call.played()
    assert of(HangUp, call.actions) == [HangUp("stopped")]
    assert finished(call).outcome == "stopped" and len(finished(call).answers) == 1


def test_hang_up_midway_is_partial(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا"), CallerHungUp())
    done = finished(call)
    assert done.outcome == "partial" and done.reason == "caller_hung_up"
    assert [r.question_id for r in done.answers] == ["chest"]
    assert not of(HangUp, call.actions)
    assert call.send(UserSaid("نعم"), CallerHungUp(), PromptPlayed("x"), NoResponse("y")) == []
    assert call.state.ended


def test_hang_up_during_escalation_keeps_the_escalation(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("نعم"), CallerHungUp())
    assert finished(call).outcome == "escalated"


def test_hang_up_during_closing_is_completed(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا"), UserSaid("٣"), UserSaid("أفضل"), UserSaid("٢"), UserSaid("لا"))
    call.send(CallerHungUp())
    assert finished(call).outcome == "completed"


# ---------------------------------------------------------------- odd events


def test_odd_events_are_ignored(mini: Questionnaire) -> None:
    call = Call(mini)
    state = call.state
    for event in (PromptPlayed(call.state.prompt_id), PromptPlayed("old"), NoResponse("old"),
                  UserSaid(""), UserSaid("   ")):  # fmt: skip
        assert step(state, event) == (state, ())
    call.send(UserSaid("لا"))
    ending = call.state
    late: list[Event] = [UserSaid("نعم"), KeyPressed("1"), NoResponse("old"), PromptPlayed("old")]
    for late_event in late:
        assert step(ending, late_event) == (ending, ())
    assert call.silence()[0] == HangUp("consent_refused")  # a lost mark: silence ends it too


def test_no_transcript_is_kept_except_open_text(mini: Questionnaire) -> None:
    call = consented(mini)
    call.send(UserSaid("لا والله ما في شي"), UserSaid("يمكن سبعة"))
    assert [r.response for r in records(call)] == ["no", 7]
    assert "والله" not in repr(call.state)
