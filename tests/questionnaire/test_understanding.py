"""Answer understanding over the labelled Arabic answers, plus confidence and phrase lists."""

from __future__ import annotations

import pytest

from hana_voice.questionnaire import Questionnaire, expected_phrases, interpret
from hana_voice.questionnaire.template import Question
from hana_voice.questionnaire.understanding import spoken_answer
from tests.questionnaire.labelled import Labelled, labelled

YES_NO = labelled("yes_no")
RATING = labelled("rating", numeric=True)
CHOICE = labelled("multiple_choice")


def test_the_labelled_data_covers_every_form() -> None:
    assert len(YES_NO) + len(RATING) + len(CHOICE) >= 250
    forms = " ".join(row.form for row in YES_NO)
    for dialect in ("msa", "egyptian", "levantine", "gulf", "saudi", "asr spelling"):
        assert dialect in forms
    for intent in ("repeat", "human", "stop"):
        assert any(row.intent == intent for row in YES_NO)
    assert {row.value for row in YES_NO} == {"yes", "no", "uncertain", None}
    assert {row.value for row in RATING} >= set(range(11)) | {None}


@pytest.mark.parametrize("row", YES_NO, ids=lambda r: f"{r.form}:{r.text}")
def test_yes_no(row: Labelled) -> None:
    got = interpret(row.text, "yes_no")
    assert (got.value, got.intent) == (row.value, row.intent)


@pytest.mark.parametrize("row", RATING, ids=lambda r: f"{r.form}:{r.text}")
def test_rating(row: Labelled) -> None:
    got = interpret(row.text, "rating")
    assert (got.value, got.intent) == (row.value, row.intent)


@pytest.mark.parametrize("row", CHOICE, ids=lambda r: f"{r.form}:{r.text}")
def test_multiple_choice(row: Labelled, shipped: Questionnaire) -> None:
    question = shipped.question("overall_condition")
    assert question is not None
    got = interpret(row.text, "multiple_choice", question.options)
    assert (got.value, got.intent) == (row.value, row.intent)


def test_confidence_says_how_sure() -> None:
    strong, agreeing = interpret("نعم", "yes_no"), interpret("ايوه ايوه", "yes_no")
    weak, padded = interpret("شوية", "yes_no"), interpret("نعم عندي الم شديد في صدري", "yes_no")
    assert agreeing.confidence > strong.confidence > padded.confidence > weak.confidence
    nothing = interpret("الطقس حار", "yes_no")
    assert (nothing.value, nothing.confidence) == (None, 0.0)
    assert interpret("نعم لا", "yes_no").confidence < 0.5
    assert 0.0 <= interpret("لا اعرف", "yes_no").confidence <= 1.0


def test_numeric_takes_any_digits_and_open_text_keeps_the_words() -> None:
    assert interpret("١٢ مرة", "numeric").value == 12
    assert interpret("  أحتاج دواء للسكر ", "open_text").value == "أحتاج دواء للسكر"
    assert interpret("عيد السؤال", "open_text").intent == "repeat"
    assert interpret("", "open_text").value is None


def test_unknown_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown answer type"):
        interpret("نعم", "essay")


def test_expected_phrases(shipped: Questionnaire) -> None:
    by_type = {q.type: expected_phrases(q) for q in shipped.questions}
    yes_no = by_type["yes_no"]
    assert yes_no[-1] == "[unk]"
    assert {"نعم", "لا", "أيوه", "ما في", "لا أعرف", "مدري"} <= set(yes_no)
    assert len(yes_no) == len(set(yes_no))
    assert {"ثمانية", "تمانية", "صفر", "عشرة"} <= set(by_type["rating"])
    assert {"أفضل", "أسوأ", "نفس الحالة", "الأول"} <= set(by_type["multiple_choice"])
    assert by_type["open_text"] == []
    assert all(not p.isascii() or p == "[unk]" for p in yes_no)


def test_spoken_answer(shipped: Questionnaire) -> None:
    question = shipped.question("overall_condition")
    assert question is not None
    assert spoken_answer(question, "worse") == "أَسْوَأ"
    yes_no = Question(id="x", order=1, text="?", type="yes_no")
    assert spoken_answer(yes_no, "yes") == "نَعَم"
    assert spoken_answer(yes_no, 8) == "ثَمَانِيَة"
    assert spoken_answer(yes_no, 42) == "42"
