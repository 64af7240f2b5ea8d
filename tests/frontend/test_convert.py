"""A template_versions row -> the questionnaire a call runs (pure conversion)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hana_voice.errors import TemplateError
from hana_voice.frontend.convert import (
    TemplateRow,
    TemplateTexts,
    canonical_id,
    convert,
)
from hana_voice.questionnaire.dialog_messages import RecordAnswer, UserSaid
from hana_voice.questionnaire.understanding import interpret
from tests.frontend.database import SEEDED_TEMPLATE_ID
from tests.questionnaire.driving import Call, of

SEEDED_QUESTIONS: list[dict[str, Any]] = [
    {"id": "q1", "text": "Were you satisfied?", "text_ar": "هل كنت راضياً عن الرعاية؟",
     "order": 1, "type": "yes_no", "expected_responses": ["نعم", "لا", "غير متأكد"]},
    {"id": "q2", "text": "Rate", "text_ar": "كيف تقيم الخدمة من واحد إلى خمسة؟", "order": 2,
     "type": "rating", "min_rating": 1, "max_rating": 5,
     "expected_responses": ["1", "2", "3", "4", "5"]},
    {"id": "q3", "text": "Recommend?", "text_ar": "هل تنصح الآخرين بالمستشفى؟", "order": 3,
     "type": "yes_no", "expected_responses": ["نعم", "لا"]},
]  # fmt: skip


def row(questions: Any, **changes: Any) -> TemplateRow:
    fields: dict[str, Any] = {
        "template_id": SEEDED_TEMPLATE_ID,
        "version": 1,
        "name": "Patient satisfaction survey",
        "name_ar": "استبيان رضا المريض",
        "is_published": True,
        "questions_json": questions,
    }
    fields.update(changes)
    return TemplateRow(**fields)


def refused(questions: Any) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        convert(row(questions))
    assert caught.value.file == f"template {SEEDED_TEMPLATE_ID}"
    return caught.value


def test_seeded_template_converts() -> None:
    q = convert(row(SEEDED_QUESTIONS))
    assert q.id == SEEDED_TEMPLATE_ID
    assert [x.id for x in q.questions] == ["q1", "q2", "q3"]
    q1, q2, q3 = q.questions
    assert q1.text == "هل كنت راضياً عن الرعاية؟"  # text_ar is what is said
    assert dict(q1.replies) == {"yes": "نعم", "no": "لا", "uncertain": "غير متأكد"}
    assert (q2.type, q2.minimum, q2.maximum) == ("rating", 1, 5)
    assert q2.reply(3) == "3"
    assert dict(q3.replies) == {"yes": "نعم", "no": "لا"}
    assert "استبيان رضا المريض" in q.greeting.text
    assert "استبيان رضا المريض" in (q.greeting.speech_text or "")
    assert "استبيان رضا المريض" in q.closing.text
    assert q.title == "استبيان رضا المريض"


def test_questions_are_said_in_order_and_text_is_used_without_text_ar() -> None:
    questions = [
        {"id": "b", "text": "السؤال الثاني؟", "order": 2, "type": "open_text"},
        {"id": "a", "text": "السؤال الأول؟", "order": 1, "type": "open_text"},
    ]
    q = convert(row(questions))
    said = [(x.id, x.text) for x in q.questions]
    assert said == [("a", "السؤال الأول؟"), ("b", "السؤال الثاني؟")]


def test_questions_json_as_text_is_read() -> None:
    assert len(convert(row(json.dumps(SEEDED_QUESTIONS))).questions) == 3


def test_two_word_yes_no_re_asks_not_sure_and_records_the_templates_words() -> None:
    q = convert(row(SEEDED_QUESTIONS))
    call = Call(q, "browser")
    call.send(UserSaid("نعم"))  # consent
    call.send(UserSaid("نعم"))  # q1
    call.send(UserSaid("أربعة"))  # q2
    before = len(call.actions)
    call.send(UserSaid("لا أعرف"))  # q3 has no "not sure": asked again
    assert not of(RecordAnswer, call.actions[before:])
    assert call.state.question.id == "q3"
    call.send(UserSaid("لا"))
    answers = of(RecordAnswer, call.actions)
    assert [(a.question_id, q.question(a.question_id).reply(a.response)) for a in answers] == [  # type: ignore[union-attr, arg-type]
        ("q1", "نعم"),
        ("q2", "4"),
        ("q3", "لا"),
    ]


def test_three_word_yes_no_accepts_not_sure() -> None:
    q = convert(row(SEEDED_QUESTIONS))
    call = Call(q, "browser")
    call.send(UserSaid("نعم"), UserSaid("لا أعرف"))
    (answer,) = of(RecordAnswer, call.actions)
    assert (answer.response, q.questions[0].reply("uncertain")) == ("uncertain", "غير متأكد")


def test_yes_no_words_are_matched_by_meaning_not_position() -> None:
    questions = [{"id": "q", "text": "؟", "order": 1, "type": "yes_no",
                  "expected_responses": ["لا", "نعم"]}]  # fmt: skip
    (question,) = convert(row(questions)).questions
    assert dict(question.replies) == {"no": "لا", "yes": "نعم"}


def test_multiple_choice_offers_the_expected_responses_with_synonyms() -> None:
    questions = [{"id": "q", "text": "كيف كانت الخدمة؟", "order": 1, "type": "multiple_choice",
                  "expected_responses": ["ممتاز", "جيد", "سيء"]}]  # fmt: skip
    (question,) = convert(row(questions)).questions
    assert [o.id for o in question.options] == ["ممتاز", "جيد", "سيء"]
    options = question.options
    assert interpret("كانت رائعة", "multiple_choice", options).value == "ممتاز"
    assert interpret("والله كويسة", "multiple_choice", options).value == "جيد"
    assert interpret("مش كويس", "multiple_choice", options).value == "سيء"
    assert interpret("الثاني", "multiple_choice", options).value == "جيد"
    assert question.reply("سيء") == "سيء"


def test_open_text_and_numeric() -> None:
    questions = [
        {"id": "n", "text": "كم عمرك؟", "order": 1, "type": "numeric"},
        {"id": "t", "text": "ملاحظاتك؟", "order": 2, "type": "open_text"},
    ]
    numeric, text = convert(row(questions)).questions
    assert (numeric.type, numeric.minimum, numeric.maximum) == ("numeric", 0, None)
    assert numeric.accepts(42)
    assert text.type == "open_text" and not text.replies


def test_rating_words_fall_back_to_digits_when_they_do_not_line_up() -> None:
    questions = [{"id": "r", "text": "قيم", "order": 1, "type": "rating", "min_rating": 0,
                  "max_rating": 3, "expected_responses": ["1", "2"]}]  # fmt: skip
    (question,) = convert(row(questions)).questions
    assert dict(question.replies) == {"0": "0", "1": "1", "2": "2", "3": "3"}


@pytest.mark.parametrize(
    ("questions", "field", "problem"),
    [
        ([{"id": "q", "text": "؟", "order": 1, "type": "slider"}],
         "questions_json[0].type", "unknown type 'slider'"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "multiple_choice"}],
         "questions_json[0].expected_responses", "has no options"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "multiple_choice",
           "expected_responses": []}],
         "questions_json[0].expected_responses", "has no options"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "rating", "min_rating": 5,
           "max_rating": 5}],
         "questions_json[0].max_rating", "must be greater than min_rating 5"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "open_text"},
          {"id": "q", "text": "؟", "order": 2, "type": "open_text"}],
         "questions_json[1].id", "duplicate id 'q'"),
        ([], "questions_json", "non-empty list"),
        ({"q": 1}, "questions_json", "non-empty list"),
        ([{"id": "q", "order": 1, "type": "open_text"}], "questions_json[0].text", "no text_ar"),
        ([{"id": "q", "text": "؟", "type": "open_text"}], "questions_json[0].order", "whole"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "yes_no",
           "expected_responses": ["نعم"]}],
         "questions_json[0].expected_responses", "at least 2"),
    ],
)  # fmt: skip
def test_malformed_templates_name_the_field(questions: Any, field: str, problem: str) -> None:
    error = refused(questions)
    assert error.field == field
    assert problem in error.problem


def test_configured_texts_override_the_defaults(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"stopped": "انتهت المكالمة."}), encoding="utf-8")
    texts = TemplateTexts.configured("أهلا، هذا {name}. هل نبدأ؟", "مع السلامة من {name}.", prompts)
    q = convert(row(SEEDED_QUESTIONS), texts)
    assert q.greeting.spoken == "أهلا، هذا استبيان رضا المريض. هل نبدأ؟"
    assert q.closing.text == "مع السلامة من استبيان رضا المريض."
    assert q.prompts.stopped.text == "انتهت المكالمة."


def test_a_bad_prompts_file_is_refused(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"confirmation": "no placeholder"}), encoding="utf-8")
    with pytest.raises(TemplateError, match="confirmation"):
        TemplateTexts.configured(None, None, prompts)


def test_unnamed_template_still_greets() -> None:
    q = convert(row(SEEDED_QUESTIONS, name=None, name_ar=None))
    assert "{name}" not in q.greeting.text and "استبيان المستشفى" in q.greeting.text


def test_canonical_id() -> None:
    assert canonical_id(" AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE ") == SEEDED_TEMPLATE_ID
    assert canonical_id("post_discharge_followup") is None
