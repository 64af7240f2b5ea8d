"""ask_if: validated at load, skipped questions recorded, every answer sequence ends well."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hana_voice.errors import TemplateError
from hana_voice.questionnaire import Questionnaire, load_questionnaires, parse_questionnaire
from hana_voice.questionnaire.branching import AskIf, Condition
from hana_voice.questionnaire.dialog import (
    Finished,
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
from hana_voice.questionnaire.outcomes import OUTCOMES
from hana_voice.settings import DEFAULT_QUESTIONNAIRE_DIR
from tests.questionnaire.conftest import minimal_data
from tests.questionnaire.driving import Call, of

EXAMPLE = load_questionnaires(DEFAULT_QUESTIONNAIRE_DIR)["personal_followup"]


def with_ask_if(index: int, ask_if: Any) -> dict[str, Any]:
    data = minimal_data()
    data["questions"][index]["ask_if"] = ask_if
    return data


# ---------------------------------------------------------------- validation


def test_the_worked_example_loads_with_its_conditions() -> None:
    q = EXAMPLE.question("earlier_appointment")
    assert q is not None and isinstance(q.ask_if, AskIf) and q.ask_if.mode == "any"
    assert q.ask_if.questions() == {"overall_condition", "pain_level", "pain_worse_at_night"}
    problem = EXAMPLE.question("medication_problem")
    assert problem is not None and problem.ask_if == AskIf(
        "all", (Condition("taking_medication", equals="no"),)
    )
    assert EXAMPLE.identity_check and EXAMPLE.fallbacks["doctor_name"] == "طبيبك"


@pytest.mark.parametrize(
    ("index", "ask_if", "field", "problem"),
    [
        (1, {"question": "visits", "at_least": 2}, "questions[1].ask_if.question",
         "not a question asked before"),
        (1, {"question": "nope", "equals": "yes"}, "questions[1].ask_if.question",
         "not a question asked before"),
        (0, {"question": "pain", "equals": 3}, "questions[0].ask_if.question",
         "not a question asked before"),
        (1, {"question": "chest", "equals": "maybe"}, "questions[1].ask_if.equals",
         "one of yes, no, uncertain"),
        (2, {"question": "pain", "at_least": "high"}, "questions[2].ask_if.at_least",
         "whole number"),
        (2, {"question": "chest", "at_least": 3}, "questions[2].ask_if.at_least",
         "only rating and numeric"),
        (3, {"question": "state", "one_of": ["better", "awful"]}, "questions[3].ask_if.one_of[1]",
         "option id"),
        (3, {"question": "state", "one_of": []}, "questions[3].ask_if.one_of", "non-empty"),
        (3, {"question": "chest"}, "questions[3].ask_if", "needs a test"),
        (3, {"all": []}, "questions[3].ask_if.all", "non-empty list"),
        (3, {"all": [{"question": "chest", "equals": "yes"}], "any": []}, "questions[3].ask_if",
         "either all or any"),
        (3, {"any": [{"question": "pain", "equals": 11}]}, "questions[3].ask_if.any[0].equals",
         "whole number from 0 to 10"),
        (4, {"question": "chest", "equals": "yes", "when": 1}, "questions[4].ask_if.when",
         "unknown field"),
    ],
)  # fmt: skip
def test_bad_conditions_name_the_field(index: int, ask_if: Any, field: str, problem: str) -> None:
    data = with_ask_if(index, ask_if)
    with pytest.raises(TemplateError) as caught:
        parse_questionnaire(data, "t.json")
    assert caught.value.field == field and problem in caught.value.problem


def test_open_text_answers_cannot_be_tested() -> None:
    data = minimal_data()
    data["questions"].append({"id": "after", "order": 6, "type": "yes_no", "text": "؟",
                              "ask_if": {"question": "notes", "equals": "x"}})  # fmt: skip
    with pytest.raises(TemplateError, match="open_text"):
        parse_questionnaire(data, "t.json")


@pytest.mark.parametrize(
    ("greeting", "fallbacks", "problem"),
    [
        ("مرحبًا {patient}", None, "unknown placeholder {patient}"),
        ("مرحبًا {doctor_name}", None, "needs a fallback wording in fallbacks.doctor_name"),
        ("مرحبًا {answer}", None, "unknown placeholder {answer}"),
        ("مرحبًا", {"nurse_name": "x"}, "unknown field"),
        ("مرحبًا", {"doctor_name": ""}, "must not be empty"),
    ],
)
def test_placeholders_are_checked_at_load(
    greeting: str, fallbacks: dict[str, str] | None, problem: str
) -> None:
    data = minimal_data()
    data["greeting"] = greeting
    if fallbacks is not None:
        data["fallbacks"] = fallbacks
    with pytest.raises(TemplateError) as caught:
        parse_questionnaire(data, "t.json")
    assert problem in caught.value.problem


def test_identity_check_must_be_a_boolean() -> None:
    data = minimal_data()
    data["identity_check"] = "yes"
    with pytest.raises(TemplateError, match="true or false"):
        parse_questionnaire(data, "t.json")


# ---------------------------------------------------------------- the dialog


def answers_of(call: Call) -> dict[str, tuple[str, object]]:
    return {r.question_id: (r.status, r.response) for r in of(RecordAnswer, call.actions)}


def test_a_question_whose_condition_fails_is_recorded_skipped() -> None:
    q = parse_questionnaire(with_ask_if(1, {"question": "chest", "equals": "yes"}), "t.json")
    call = Call(q)
    call.send(UserSaid("نعم"), UserSaid("لا"))
    assert call.last_speak.expects is not None
    assert call.last_speak.expects.question_id == "state"  # pain was skipped
    assert answers_of(call)["pain"] == ("skipped", None)


def test_the_worked_example_branches() -> None:
    call = Call(EXAMPLE, context={"patient_name": "سارة", "doctor_name": "د. خالد"})
    call.send(KeyPressed("1"), KeyPressed("1"))  # it is her; she consents
    call.send(UserSaid("لا"))  # not taking the medication -> why?
    assert call.last_speak.expects is not None
    assert call.last_speak.expects.question_id == "medication_problem"
    call.send(UserSaid("نسيت"))  # forgot: severity is skipped
    call.send(UserSaid("اثنين"))  # pain 2: night pain skipped
    call.send(UserSaid("أحسن"))  # better: earlier appointment and notes skipped
    call.played()
    got = answers_of(call)
    assert got["side_effects_severe"] == ("skipped", None)
    assert got["pain_worse_at_night"] == ("skipped", None)
    assert got["earlier_appointment"] == ("skipped", None)
    assert got["notes_for_care_team"] == ("skipped", None)
    (done,) = of(Finished, call.actions)
    assert done.outcome == "completed"
    assert "د. خالد" in call.last_speak.text and call.last_speak.personal


# ---------------------------------------------------------------- property


ANSWERS = ["نعم", "لا", "ما أدري", "نسيت", "أعراض جانبية", "خلصت", "صفر", "خمسة", "تسعة",
           "عشرة", "أفضل", "نفس الحالة", "أسوأ", "ملاحظة", "مين معي", "عيد", "بعد ساعة",
           "لا تتصلوا علي", "وقف", "ابي اكلم الدكتور", "الطقس"]  # fmt: skip
events = st.one_of(
    st.sampled_from(ANSWERS).map(UserSaid),
    st.sampled_from([*"0123456789*#"]).map(KeyPressed),
    st.just(None),  # silence
)


def _asked_ok(q: Questionnaire, asked: list[str], records: list[RecordAnswer]) -> None:
    """Every question asked had its condition hold on the answers recorded before it."""
    answered: dict[str, str | int] = {}
    by_id = {r.question_id: r for r in records}
    for question in q.questions:
        record = by_id.get(question.id)
        if record is None:
            break
        if record.status == "skipped":
            assert question.ask_if is not None and not question.ask_if.holds(answered)
            assert question.id not in asked
        else:
            assert question.ask_if is None or question.ask_if.holds(answered)
            if record.status == "answered" and record.response is not None:
                answered[question.id] = record.response


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=60), st.booleans(), st.booleans())
def test_every_answer_sequence_walks_a_valid_path_to_one_outcome(
    sequence: list[UserSaid | KeyPressed | None], named: bool, transfer_ok: bool
) -> None:
    context = {"patient_name": "سارة"} if named else {}
    state, actions = start(EXAMPLE, "telephony", context=context)
    log = list(actions)
    for event in [*sequence, *([None] * 200)]:
        if state.ended:
            break
        if state.phase == "ending":
            state, new = step(state, PromptPlayed(state.prompt_id))
        elif state.phase == "transferring":
            # The session reports how the provider's transfer went (issue 12).
            state, new = step(state, TransferDone() if transfer_ok else TransferFailed())
        elif event is None:
            state, new = step(state, NoResponse(state.prompt_id))
        else:
            state, new = step(state, event)
        log.extend(new)
    assert state.ended
    finishes = of(Finished, log)
    assert len(finishes) == 1 and log[-1] is finishes[0]
    assert finishes[0].outcome in OUTCOMES
    records = of(RecordAnswer, log)
    ids = [r.question_id for r in records]
    assert len(ids) == len(set(ids))
    order = {q.id: q.order for q in EXAMPLE.questions}
    assert [order[i] for i in ids] == sorted(order[i] for i in ids)
    asked = [s.expects.question_id for s in of(Speak, log) if s.expects is not None]
    _asked_ok(EXAMPLE, asked, records)
    if finishes[0].outcome == "completed":
        assert set(ids) == {q.id for q in EXAMPLE.questions}
