"""Field access for one template file: every mistake raises TemplateError with its path.

Shared by :mod:`~hana_voice.questionnaire.loading` and
:mod:`~hana_voice.questionnaire.template_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, cast

from hana_voice.errors import TemplateError
from hana_voice.questionnaire.template import Prompt, Question

#: Descriptive fields the front end may store; accepted and not used.
METADATA = frozenset(
    {"description", "name", "created_at", "updated_at", "is_active", "category", "required",
     "metadata", "notes", "department", "survey_id"}
)  # fmt: skip


class File:
    """Field access for one file that raises TemplateError with the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> NoReturn:
        raise TemplateError(self.source, path, problem)

    def obj(self, value: object, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be an object, not {kind(value)}")
        for key in value:
            if key not in allowed and key not in METADATA:
                self.fail(f"{path}.{key}" if path else key, "unknown field")
        return cast(Mapping[str, Any], value)

    def text(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
        value = data.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            if required:
                self.fail(where, "missing required field")
            return ""
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {kind(value)}")
        if required and not value.strip():
            self.fail(where, "must not be empty")
        return value.strip()

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: int | None,
                low: int | None = None, high: int | None = None) -> int | None:  # fmt: skip
        value = data.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be a whole number, not {kind(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(where, f"{value} is out of range {low}..{high}")
        return value

    def number(self, data: Mapping[str, Any], key: str, path: str, default: float,
               low: float, high: float) -> float:  # fmt: skip
        value = data.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number, not {kind(value)}")
        if not low <= value <= high:
            self.fail(where, f"{value} is out of range {low:g}..{high:g}")
        return float(value)

    def prompt(self, value: object, path: str, *, required: bool = True) -> Prompt | None:
        if value is None:
            if required:
                self.fail(path, "missing required field")
            return None
        if isinstance(value, str):
            if not value.strip():
                self.fail(path, "must not be empty")
            return Prompt(value.strip())
        data = self.obj(value, path, frozenset({"text", "speech_text", "text_vocalized"}))
        return Prompt(self.text(data, "text", path), speech(self, data, path))


def kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def speech(f: File, data: Mapping[str, Any], path: str) -> str | None:
    spoken = f.text(data, "speech_text", path, required=False) or f.text(
        data, "text_vocalized", path, required=False
    )
    return spoken or None


def expected(q: Question) -> str:
    if q.type == "yes_no":
        return "one of yes, no, uncertain"
    if q.type == "multiple_choice":
        return "an option id in options (" + ", ".join(o.id for o in q.options) + ")"
    if q.type == "open_text":
        return "allowed for open_text"
    return f"a whole number from {q.minimum} to {q.maximum if q.maximum is not None else 'any'}"
