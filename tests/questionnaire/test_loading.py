"""Template validation: the shipped file loads, and each kind of mistake names file and field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hana_voice.errors import TemplateError
from hana_voice.questionnaire import Questionnaire, load_questionnaire, load_questionnaires
from hana_voice.settings import DEFAULT_QUESTIONNAIRE_DIR, Settings
from tests.questionnaire.conftest import minimal_data


def write(tmp_path: Path, data: Any, name: str = "t.json") -> Path:
    path = tmp_path / name
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_template_is_the_default_and_loads(shipped: Questionnaire) -> None:
    assert Settings().questionnaire_dir == DEFAULT_QUESTIONNAIRE_DIR
    assert Settings().default_questionnaire in load_questionnaires(DEFAULT_QUESTIONNAIRE_DIR)
    types = {q.type for q in shipped.questions}
    assert {"yes_no", "rating", "multiple_choice"} <= types
    assert len(shipped.questions) >= 5
    assert all(q.speech_text for q in shipped.questions)
    assert shipped.greeting.speech_text and "١" in shipped.greeting.text
    chest = shipped.question("chest_pain_or_breathlessness")
    pain = shipped.question("pain_level")
    assert chest is not None and chest.critical.matches("yes") and not chest.critical.matches("no")
    assert pain is not None and pain.critical.matches(8) and not pain.critical.matches(7)
    assert (pain.minimum, pain.maximum) == (0, 10)
    assert [q.order for q in shipped.questions] == sorted(q.order for q in shipped.questions)


def test_defaults_fill_prompts_keypad_and_ranges(tmp_path: Path) -> None:
    q = load_questionnaire(write(tmp_path, minimal_data()))
    assert q.keypad == {"0": "human", "*": "repeat"}
    assert q.yes_no_keypad == {"1": "yes", "2": "no"}
    assert "{answer}" in q.prompts.confirmation.text
    assert q.prompts.no_response.speech_text
    pain, visits = q.questions[1], q.questions[3]
    assert (pain.minimum, pain.maximum, visits.minimum, visits.maximum) == (0, 10, 0, 20)
    assert q.questions[0].response_timeout == q.response_timeout == 8.0


def test_options_may_be_plain_strings_and_speech_text_has_an_alias(tmp_path: Path) -> None:
    data = minimal_data()
    data["questions"][2]["options"] = ["نعم", "لا"]
    data["questions"][2]["critical"] = ["لا"]
    data["questions"][0]["text_vocalized"] = "أَلَمٌ فِي الصَّدْر؟"
    q = load_questionnaire(write(tmp_path, data))
    assert [o.id for o in q.questions[2].options] == ["نعم", "لا"]
    assert q.questions[0].prompt.spoken == "أَلَمٌ فِي الصَّدْر؟"


def test_questions_are_sorted_by_order(tmp_path: Path) -> None:
    data = minimal_data()
    data["questions"][0]["order"] = 99
    q = load_questionnaire(write(tmp_path, data))
    assert q.questions[-1].id == "chest"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return change


_DELETE = object()

MISTAKES = [
    ("missing id", _set("id", _DELETE), "id", "missing"),
    ("missing greeting", _set("greeting", _DELETE), "greeting", "missing"),
    ("missing closing", _set("closing", _DELETE), "closing", "missing"),
    ("missing version", _set("version", _DELETE), "version", "missing"),
    ("no questions", _set("questions", []), "questions", "non-empty"),
    ("missing order", _set("questions/0/order", _DELETE), "questions[0].order", "missing"),
    ("missing text", _set("questions/1/text", _DELETE), "questions[1].text", "missing"),
    ("empty text", _set("questions/1/text", "  "), "questions[1].text", "empty"),
    ("order not int", _set("questions/0/order", "1"), "questions[0].order", "whole number"),
    ("text not str", _set("questions/0/text", 5), "questions[0].text", "string"),
    ("bad type", _set("questions/0/type", "essay"), "questions[0].type", "not one of"),
    ("retries not int", _set("max_retries", 1.5), "max_retries", "whole number"),
    ("retries range", _set("max_retries", 9), "max_retries", "out of range"),
    ("timeout type", _set("response_timeout", "8"), "response_timeout", "number"),
    ("confirm range", _set("confirm_below", 2), "confirm_below", "out of range"),
    ("questions type", _set("questions", {}), "questions", "non-empty list"),
    ("unknown field", _set("questions/0/max_retires", 2), "questions[0].max_retires", "unknown"),
    ("duplicate id", _set("questions/1/id", "chest"), "questions[1].id", "duplicate id"),
    ("duplicate order", _set("questions/1/order", 1), "questions[1].order", "duplicate order"),
    ("key not digit", _set("questions/0/keypad", {"x": "yes"}), "questions[0].keypad.x", "digit"),
    (
        "key two digits",
        _set("questions/0/keypad", {"12": "yes"}),
        "questions[0].keypad.12",
        "digit",
    ),
    (
        "key bad answer",
        _set("questions/0/keypad", {"1": "maybe"}),
        "questions[0].keypad.1",
        "yes, no",
    ),
    (
        "key not option",
        _set("questions/2/keypad", {"1": "fine"}),
        "questions[2].keypad.1",
        "option",
    ),
    (
        "key off range",
        _set("questions/1/keypad", {"1": 11}),
        "questions[1].keypad.1",
        "whole number",
    ),
    (
        "critical not option",
        _set("questions/2/critical", ["awful"]),
        "questions[2].critical.answers[0]",
        "option",
    ),
    (
        "critical yes_no",
        _set("questions/0/critical", ["maybe"]),
        "questions[0].critical.answers[0]",
        "yes, no",
    ),
    (
        "critical bound range",
        _set("questions/1/critical", {"at_least": 11}),
        "questions[1].critical.at_least",
        "out of range",
    ),
    (
        "critical bound type",
        _set("questions/0/critical", {"at_least": 3}),
        "questions[0].critical.at_least",
        "numeric bounds",
    ),
    ("rating max range", _set("questions/1/max", 11), "questions[1].max", "out of range"),
    ("rating min >= max", _set("questions/1/min", 10), "questions[1].max", "greater than min"),
    ("min on yes_no", _set("questions/0/min", 1), "questions[0].min", "only rating"),
    (
        "choice no options",
        _set("questions/2/options", _DELETE),
        "questions[2].options",
        "two options",
    ),
    ("one option", _set("questions/2/options", ["a"]), "questions[2].options", "at least two"),
    (
        "options on yes_no",
        _set("questions/0/options", ["a", "b"]),
        "questions[0].options",
        "only multiple_choice",
    ),
    (
        "dup option",
        _set("questions/2/options", ["a", "a"]),
        "questions[2].options[1].id",
        "duplicate",
    ),
    ("bad global key", _set("keypad", {"0": "dance"}), "keypad.0", "not one of"),
    ("bad global key name", _set("keypad", {"A": "human"}), "keypad.A", "unknown"),
    (
        "confirmation lacks answer",
        _set("prompts", {"confirmation": "صحيح؟"}),
        "prompts.confirmation",
        "{answer}",
    ),
    ("unknown prompt", _set("prompts", {"hello": "x"}), "prompts.hello", "unknown"),
    ("prompt type", _set("greeting", 3), "greeting", "object"),
]


@pytest.mark.parametrize(("change", "field", "problem"), [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])  # fmt: skip
def test_each_mistake_names_file_field_and_problem(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, problem: str
) -> None:
    data = minimal_data()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(TemplateError) as caught:
        load_questionnaires(tmp_path)
    assert caught.value.file == str(path)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "id": "x",\n  oops\n}')
    with pytest.raises(TemplateError) as caught:
        load_questionnaire(path)
    assert caught.value.file == str(path)
    assert "invalid JSON at line 3" in caught.value.problem


def test_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="must be an object"):
        load_questionnaire(write(tmp_path, "[1, 2]"))


def test_duplicate_questionnaire_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, minimal_data(), "a.json")
    write(tmp_path, minimal_data(), "b.json")
    with pytest.raises(TemplateError) as caught:
        load_questionnaires(tmp_path)
    assert caught.value.field == "id" and "a.json" in caught.value.problem


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a directory"):
        load_questionnaires(tmp_path / "nope")
    with pytest.raises(TemplateError, match=r"no \*\.json"):
        load_questionnaires(tmp_path)


def test_front_end_metadata_fields_are_accepted(tmp_path: Path) -> None:
    data = minimal_data()
    data["description"] = "x"
    data["questions"][0]["required"] = True
    assert load_questionnaire(write(tmp_path, data)).id == "mini"
