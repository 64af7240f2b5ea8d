"""Reading and validating questionnaire JSON files at start-up.

Every mistake raises :class:`~hana_voice.errors.TemplateError` with the file, the field path
(``questions[2].keypad.1``) and the problem, so an operator can fix the file from the one
line start-up prints. Unknown fields are refused (a misspelt ``max_retires`` would otherwise
be silently ignored), except the descriptive fields the front end stores beside questions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from hana_voice.errors import TemplateError
from hana_voice.questionnaire.template import (
    ANSWER_TYPES,
    BUILTIN_FALLBACKS,
    KEYPAD_INTENTS,
    PROMPT_NAMES,
    RATING_MAX,
    RATING_MIN,
    YES_NO_VALUES,
    AnswerType,
    AnswerValue,
    Critical,
    Option,
    Prompt,
    Prompts,
    Question,
    Questionnaire,
)
from hana_voice.questionnaire.template_checks import check_placeholders, fallbacks_of, with_ask_if
from hana_voice.questionnaire.template_fields import File as _File
from hana_voice.questionnaire.template_fields import expected as _expected
from hana_voice.questionnaire.template_fields import kind as _kind
from hana_voice.questionnaire.template_fields import speech as _speech

_TOP_FIELDS = frozenset(
    {"id", "version", "language", "title", "greeting", "closing", "prompts", "questions",
     "max_retries", "response_timeout", "confirm_below", "escalate_after_unanswered",
     "keypad", "yes_no_keypad", "identity_check", "fallbacks"}
)  # fmt: skip
_QUESTION_FIELDS = frozenset(
    {"id", "order", "text", "speech_text", "text_vocalized", "type", "options", "keypad",
     "critical", "max_retries", "response_timeout", "min", "max", "ask_if"}
)  # fmt: skip
_OPTION_FIELDS = frozenset({"id", "text", "speech_text", "text_vocalized", "synonyms"})
_KEYS = frozenset("0123456789*#")


def load_questionnaires(directory: Path) -> dict[str, Questionnaire]:
    """Read and validate every ``*.json`` in ``directory``, keyed by questionnaire id."""
    if not directory.is_dir():
        raise TemplateError(str(directory), "QUESTIONNAIRE_DIR", "is not a directory")
    found: dict[str, Questionnaire] = {}
    for path in sorted(directory.glob("*.json")):
        questionnaire = load_questionnaire(path)
        if questionnaire.id in found:
            other = found[questionnaire.id].source
            raise TemplateError(str(path), "id", f"{questionnaire.id!r} is also the id in {other}")
        found[questionnaire.id] = questionnaire
    if not found:
        raise TemplateError(str(directory), "QUESTIONNAIRE_DIR", "holds no *.json questionnaire")
    return found


def load_questionnaire(path: Path) -> Questionnaire:
    """Read and validate one file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(str(path), "-", f"cannot be read: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            str(path), "-", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return parse_questionnaire(data, str(path))


def parse_questionnaire(data: object, source: str) -> Questionnaire:
    """Validate one template already decoded from JSON."""
    f = _File(source)
    top = f.obj(data, "", _TOP_FIELDS)
    version = top.get("version")
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        f.fail("version", "missing required field" if version is None else "must be a string")
    max_retries = f.integer(top, "max_retries", "", 2, 0, 5)
    timeout = f.number(top, "response_timeout", "", 8.0, 1.0, 120.0)
    assert max_retries is not None
    questions_raw = top.get("questions")
    if not isinstance(questions_raw, list) or not questions_raw:
        f.fail("questions", "must be a non-empty list")
    questions = tuple(
        _question(f, item, f"questions[{i}]", max_retries, timeout)
        for i, item in enumerate(questions_raw)
    )
    _unique(f, [q.id for q in questions], "questions", "id")
    _unique(f, [q.order for q in questions], "questions", "order")
    questions = tuple(
        with_ask_if(f, q, item, f"questions[{i}]", questions)
        for i, (q, item) in enumerate(zip(questions, questions_raw, strict=True))
    )
    identity_check = top.get("identity_check", True)
    if not isinstance(identity_check, bool):
        f.fail("identity_check", f"must be true or false, not {_kind(identity_check)}")
    fallbacks = fallbacks_of(f, top.get("fallbacks"))
    check_placeholders(f, top, fallbacks)
    return Questionnaire(
        id=f.text(top, "id", ""),
        version=str(version),
        language=f.text(top, "language", ""),
        title=f.text(top, "title", "", required=False) or None,
        greeting=cast(Prompt, f.prompt(top.get("greeting"), "greeting")),
        closing=cast(Prompt, f.prompt(top.get("closing"), "closing")),
        prompts=_prompts(f, top.get("prompts")),
        questions=tuple(sorted(questions, key=lambda q: q.order)),
        max_retries=max_retries,
        response_timeout=timeout,
        confirm_below=f.number(top, "confirm_below", "", 0.0, 0.0, 1.0),
        escalate_after_unanswered=cast(int, f.integer(top, "escalate_after_unanswered", "", 3, 0)),
        keypad=_global_keypad(f, top.get("keypad")),
        yes_no_keypad=_yes_no_keypad(f, top.get("yes_no_keypad")),
        source=source,
        identity_check=identity_check,
        fallbacks={**BUILTIN_FALLBACKS, **fallbacks},
    )


def _unique(f: _File, values: list[Any], path: str, key: str) -> None:
    seen: set[Any] = set()
    for i, value in enumerate(values):
        if value in seen:
            f.fail(f"{path}[{i}].{key}", f"duplicate {key} {value!r}")
        seen.add(value)


def parse_prompts(data: object, source: str) -> Prompts:
    """Validate a ``prompts`` object on its own (the front-end templates' shared prompts)."""
    return _prompts(_File(source), data)


def _prompts(f: _File, value: object) -> Prompts:
    if value is None:
        return Prompts()
    data = f.obj(value, "prompts", frozenset(PROMPT_NAMES))
    given = {name: f.prompt(data[name], f"prompts.{name}") for name in PROMPT_NAMES if name in data}
    prompts = Prompts(**cast(dict[str, Prompt], given))
    if "{answer}" not in prompts.confirmation.text:
        f.fail("prompts.confirmation", "must contain {answer}, where the heard answer is read")
    return prompts


def _global_keypad(f: _File, value: object) -> dict[str, str]:
    if value is None:
        return {"0": "human", "*": "repeat"}
    data = f.obj(value, "keypad", _KEYS)
    for key, intent in data.items():
        if intent not in KEYPAD_INTENTS:
            f.fail(f"keypad.{key}", f"{intent!r} is not one of {', '.join(KEYPAD_INTENTS)}")
    return dict(data)


def _yes_no_keypad(f: _File, value: object) -> dict[str, str]:
    if value is None:
        return {"1": "yes", "2": "no"}
    data = f.obj(value, "yes_no_keypad", _KEYS)
    for key, answer in data.items():
        if answer not in YES_NO_VALUES:
            f.fail(f"yes_no_keypad.{key}", f"{answer!r} is not one of yes, no, uncertain")
    return dict(data)


def _question(f: _File, value: object, path: str, retries: int, timeout: float) -> Question:
    data = f.obj(value, path, _QUESTION_FIELDS)
    qtype = f.text(data, "type", path)
    if qtype not in ANSWER_TYPES:
        f.fail(f"{path}.type", f"{qtype!r} is not one of {', '.join(ANSWER_TYPES)}")
    answer_type: AnswerType = qtype
    if data.get("order") is None:
        f.fail(f"{path}.order", "missing required field")
    minimum, maximum = _range(f, data, path, answer_type)
    options = _options(f, data.get("options"), path, answer_type)
    question = Question(
        id=f.text(data, "id", path),
        order=cast(int, f.integer(data, "order", path, None, 0)),
        text=f.text(data, "text", path),
        speech_text=_speech(f, data, path),
        type=answer_type,
        options=options,
        max_retries=cast(int, f.integer(data, "max_retries", path, retries, 0, 5)),
        response_timeout=f.number(data, "response_timeout", path, timeout, 1.0, 120.0),
        minimum=minimum,
        maximum=maximum,
    )
    keypad = _question_keypad(f, data.get("keypad"), f"{path}.keypad", question)
    critical = _critical(f, data.get("critical"), f"{path}.critical", question)
    return replace(question, keypad=keypad, critical=critical)


def _range(
    f: _File, data: Mapping[str, Any], path: str, qtype: AnswerType
) -> tuple[int | None, int | None]:
    if qtype not in ("rating", "numeric"):
        for key in ("min", "max"):
            if key in data:
                f.fail(f"{path}.{key}", f"only rating and numeric questions have a {key}")
        return None, None
    if qtype == "rating":
        low = f.integer(data, "min", path, RATING_MIN, RATING_MIN, RATING_MAX)
        high = f.integer(data, "max", path, RATING_MAX, RATING_MIN, RATING_MAX)
    else:
        low = f.integer(data, "min", path, 0, 0)
        high = f.integer(data, "max", path, None, 0)
    if low is not None and high is not None and low >= high:
        f.fail(f"{path}.max", f"max {high} must be greater than min {low}")
    return low, high


def _options(f: _File, value: object, path: str, qtype: AnswerType) -> tuple[Option, ...]:
    if value is None or value == []:
        if qtype == "multiple_choice":
            f.fail(f"{path}.options", "a multiple_choice question needs at least two options")
        return ()
    if qtype != "multiple_choice":
        f.fail(f"{path}.options", "only multiple_choice questions have options")
    if not isinstance(value, list) or len(value) < 2:
        f.fail(f"{path}.options", "must be a list of at least two options")
    options: list[Option] = []
    for i, item in enumerate(value):
        where = f"{path}.options[{i}]"
        if isinstance(item, str) and item.strip():
            options.append(Option(item.strip(), item.strip()))
            continue
        data = f.obj(item, where, _OPTION_FIELDS)
        synonyms = data.get("synonyms", [])
        if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
            f.fail(f"{where}.synonyms", "must be a list of strings")
        text = f.text(data, "text", where)
        option_id = f.text(data, "id", where, required=False) or text
        options.append(Option(option_id, text, _speech(f, data, where), tuple(synonyms)))
    _unique(f, [o.id for o in options], f"{path}.options", "id")
    return tuple(options)


def _question_keypad(f: _File, value: object, path: str, q: Question) -> dict[str, AnswerValue]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        f.fail(path, f"must be an object, not {_kind(value)}")
    keypad: dict[str, AnswerValue] = {}
    for key, answer in value.items():
        if len(key) != 1 or key not in "0123456789":
            f.fail(f"{path}.{key}", "a keypad key must be one digit 0-9")
        if q.type == "open_text":
            f.fail(f"{path}.{key}", "open_text questions take no keypad answers")
        if isinstance(answer, bool) or not isinstance(answer, str | int) or not q.accepts(answer):
            f.fail(f"{path}.{key}", f"{answer!r} is not {_expected(q)}")
        keypad[key] = answer
    return keypad


def _critical(f: _File, value: object, path: str, q: Question) -> Critical:
    if value is None:
        return Critical()
    if isinstance(value, list):
        value = {"answers": value}
    data = f.obj(value, path, frozenset({"answers", "at_least", "at_most"}))
    answers = data.get("answers", [])
    if not isinstance(answers, list):
        f.fail(f"{path}.answers", f"must be a list, not {_kind(answers)}")
    for i, answer in enumerate(answers):
        if (
            not isinstance(answer, str)
            or q.type in ("rating", "numeric", "open_text")
            or not (q.accepts(answer))
        ):
            f.fail(f"{path}.answers[{i}]", f"{answer!r} is not {_expected(q)}")
    bounds = {}
    for key in ("at_least", "at_most"):
        if key in data and q.type not in ("rating", "numeric"):
            f.fail(f"{path}.{key}", "only rating and numeric questions have numeric bounds")
        bounds[key] = f.integer(data, key, path, None, q.minimum, q.maximum)
    return Critical(frozenset(answers), bounds["at_least"], bounds["at_most"])
