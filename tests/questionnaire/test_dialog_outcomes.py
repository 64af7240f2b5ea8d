"""Outcomes, the identity check, call-backs, do-not-call, questions back, personal prompts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hana_voice.questionnaire import Questionnaire, parse_questionnaire
from hana_voice.questionnaire.dialog import (
    MAX_REPEATS,
    CallerHungUp,
    Finished,
    HangUp,
    KeyPressed,
    RecordAnswer,
    Speak,
    UserSaid,
    interrupted,
)
from hana_voice.questionnaire.outcomes import OUTCOMES, STATUS, status_of
from tests.questionnaire.conftest import minimal_data
from tests.questionnaire.driving import Call, of

NAMED = {"patient_name": "سارة العتيبي", "hospital_name": "مستشفى الملك فهد"}
START = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # 14:00 in Riyadh


def finished(call: Call) -> Finished:
    (done,) = of(Finished, call.actions)
    return done


def ended(call: Call) -> Finished:
    call.played()
    assert call.state.ended
    return finished(call)


def spoken(call: Call) -> str:
    return " ".join(s.text for s in of(Speak, call.actions))


# ---------------------------------------------------------------- identity check


def test_identity_is_checked_first_when_the_context_names_the_patient(mini: Questionnaire) -> None:
    call = Call(mini, context={"custom": NAMED})
    first = call.last_speak
    assert first.expects is not None and first.expects.question_id == "identity"
    assert "سارة العتيبي" in first.text and first.personal
    assert {"نعم", "مو موجود", "أخوه"} <= set(first.expects.phrases)
    assert first.expects.phrases[-1] == "[unk]"
    assert call.state.phase == "identity"
    call.send(UserSaid("ايه نعم أنا"))
    assert call.last_speak.text == mini.greeting.spoken and not call.last_speak.personal
    assert str(call.state.phase) == "consent"


def test_no_identity_check_without_a_name_or_when_turned_off(mini: Questionnaire) -> None:
    assert Call(mini, context={"hospital_name": "x"}).state.phase == "consent"
    data = minimal_data()
    data["identity_check"] = False
    off = parse_questionnaire(data, "off.json")
    assert Call(off, context=NAMED).state.phase == "consent"


@pytest.mark.parametrize("answer", [UserSaid("لا، أنا أخوه"), UserSaid("لا غلطان بالرقم"),
                                    KeyPressed("2")])  # fmt: skip
def test_wrong_person_ends_without_a_word_about_health(
    mini: Questionnaire, answer: UserSaid | KeyPressed
) -> None:
    call = Call(mini, context=NAMED)
    call.send(answer)
    assert call.last_speak.text == mini.prompts.wrong_person.spoken
    done = ended(call)
    assert done.outcome == "wrong_person" and done.answers == ()
    assert of(HangUp, call.actions) == [HangUp("wrong_person")]
    said = spoken(call)
    for word in ("صحت", "المستشفى", "ألم", "الصدر", mini.greeting.text[:10]):
        assert word not in said


def test_not_here_is_a_callback(mini: Questionnaire) -> None:
    call = Call(mini, context=NAMED, started_at=START)
    call.send(UserSaid("مو موجود الحين، كلموه بكرة المسا"))
    done = ended(call)
    assert done.outcome == "callback_requested"
    assert done.detail == {"callback_at": "2026-12-02T18:00:00+03:00"}


def test_who_is_this_at_the_identity_check_says_who_without_health(mini: Questionnaire) -> None:
    call = Call(mini, context=NAMED)
    call.send(UserSaid("مين معي؟"))
    speak = call.last_speak
    assert speak.text.startswith("مَعَكَ هَنَاء") and "مستشفى الملك فهد" in speak.text
    assert "صِحَّت" not in speak.text and speak.expects is not None
    assert speak.expects.question_id == "identity" and call.state.attempts == 0
    call.send(KeyPressed("1"))
    assert call.state.phase == "consent"


# ---------------------------------------------------------------- intents


def test_who_is_this_during_questions_is_not_a_failed_try(mini: Questionnaire) -> None:
    call = Call(mini, context={"hospital_name": "مستشفى الملك فهد"})
    call.send(UserSaid("نعم"))
    call.send(UserSaid("وش اسمك؟"))
    speak = call.last_speak
    assert "مستشفى الملك فهد" in speak.text and "صِحَّتِك" in speak.text
    assert speak.text.endswith(mini.questions[0].prompt.spoken) and speak.personal
    assert call.state.attempts == 0 and call.state.repeats == 1
    for _ in range(MAX_REPEATS):
        call.send(UserSaid("مين انت"))
    assert call.state.attempts == 1  # asked too often: now it counts


def test_identify_falls_back_when_the_hospital_is_unknown(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(UserSaid("من المتصل؟"))
    assert "المستشفى" in call.last_speak.text and not call.last_speak.personal


@pytest.mark.parametrize(
    ("at_consent", "text", "callback_at"),
    [
        (True, "مشغول الحين، كلمني بعدين", None),
        (False, "أنا بالدوام، اتصل بعد ساعة", "2026-12-01T15:00:00+03:00"),
        (False, "بكرة الصبح", "2026-12-02T09:00:00+03:00"),
    ],
)
def test_callback_ends_with_the_time_asked_for(
    mini: Questionnaire, at_consent: bool, text: str, callback_at: str | None
) -> None:
    call = Call(mini, started_at=START)
    if not at_consent:
        call.send(UserSaid("نعم"), UserSaid("لا"))
    call.send(UserSaid(text))
    assert call.last_speak.text == mini.prompts.callback.spoken
    done = ended(call)
    assert done.outcome == "callback_requested" and done.detail == {"callback_at": callback_at}
    assert len(done.answers) == (0 if at_consent else 1)


def test_callback_without_a_start_time_has_no_time(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(UserSaid("اتصل بعد ساعة"))
    assert ended(call).detail == {"callback_at": None}


@pytest.mark.parametrize("at_consent", [True, False])
def test_do_not_call_again_is_its_own_outcome(mini: Questionnaire, at_consent: bool) -> None:
    call = Call(mini)
    if not at_consent:
        call.send(UserSaid("نعم"))
    call.send(UserSaid("لا تتصلوا علي مرة ثانية"))
    assert call.last_speak.text == mini.prompts.do_not_call.spoken
    assert ended(call).outcome == "do_not_call"
    assert of(HangUp, call.actions) == [HangUp("do_not_call")]


def test_refusal_before_the_questions_is_consent_refused(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(UserSaid("خلاص ما أبي"))
    assert ended(call).outcome == "consent_refused"
    call = Call(mini)
    call.send(UserSaid("نعم"), UserSaid("خلاص ما أبي"))
    assert ended(call).outcome == "stopped"


def test_a_settled_self_correction_is_the_answer(mini: Questionnaire) -> None:
    call = Call(mini)
    call.send(UserSaid("نعم"), UserSaid("ايه، لا قصدي لا"))
    (record,) = of(RecordAnswer, call.actions)
    assert record.response == "no"


# ---------------------------------------------------------------- hang-ups


def test_silence_then_hang_up_is_no_response(mini: Questionnaire) -> None:
    call = Call(mini)
    call.silence()
    call.send(CallerHungUp())
    assert finished(call).outcome == "no_response"


def test_silence_to_the_end_is_no_response(mini: Questionnaire) -> None:
    call = Call(mini)
    for _ in range(mini.max_retries + 1):
        call.silence()
    assert ended(call).outcome == "no_response"


def test_interrupted_reports_without_changing_the_state(mini: Questionnaire) -> None:
    call = Call(mini)
    assert interrupted(call.state).outcome == "no_response"
    call.send(UserSaid("نعم"), UserSaid("لا"))
    done = interrupted(call.state)
    assert done.outcome == "partial" and len(done.answers) == 1
    assert not call.state.ended
    call.send(UserSaid("وقف"))
    call.played()
    assert interrupted(call.state).outcome == "stopped"


# ---------------------------------------------------------------- personal prompts


def test_personal_prompts_use_the_context_or_the_fallback() -> None:
    data = minimal_data()
    data["greeting"] = "مرحبًا {patient_name}، معك مستشفى {hospital_name}. هل تسمح ببعض الأسئلة؟"
    data["fallbacks"] = {"patient_name": "عزيزنا المريض", "hospital_name": "الحبيب"}
    data["identity_check"] = False
    q = parse_questionnaire(data, "p.json")
    named = Call(q, context={"custom": {"patient_name": "  سارة  "}})
    assert named.last_speak.text.startswith("مرحبًا سارة، معك مستشفى الحبيب.")
    assert named.last_speak.personal
    plain = Call(q)
    assert plain.last_speak.text.startswith("مرحبًا عزيزنا المريض، معك مستشفى الحبيب.")
    assert not plain.last_speak.personal


# ---------------------------------------------------------------- the outcome set


def test_every_outcome_has_a_store_status() -> None:
    assert set(STATUS) == set(OUTCOMES) and len(OUTCOMES) == 11
    assert status_of("do_not_call") == "stopped" and status_of("failed") == "error"
    with pytest.raises(ValueError, match="unknown call outcome"):
        status_of("incomplete")
