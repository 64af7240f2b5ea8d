"""Cross-field checks of a template: placeholders and their fallbacks, ``ask_if`` conditions.

Each raises :class:`~hana_voice.errors.TemplateError` naming the file, the field and the
problem, like the rest of :mod:`~hana_voice.questionnaire.loading`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from hana_voice.questionnaire.branching import AskIf, Condition
from hana_voice.questionnaire.template import PLACEHOLDERS, Question
from hana_voice.questionnaire.template_fields import File, expected

_PLACEHOLDER = re.compile(r"\{([^{}\s]*)\}")
#: Prompts said only when the context has the value they name: no fallback needed for it.
_NEEDS_NO_FALLBACK = {"identity": "patient_name", "identify_identity": "patient_name"}


def fallbacks_of(f: File, value: object) -> dict[str, str]:
    if value is None:
        return {}
    data = f.obj(value, "fallbacks", frozenset(PLACEHOLDERS))
    return {key: f.text(data, key, "fallbacks") for key in data}


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for k in ("text", "speech_text", "text_vocalized")
                if isinstance(v := value.get(k), str)]  # fmt: skip
    return []


def check_placeholders(f: File, top: Mapping[str, Any], fallbacks: Mapping[str, str]) -> None:
    """Every ``{name}`` is a known placeholder with a fallback; ``{answer}`` only where read."""
    places: list[tuple[str, object, str | None]] = [
        ("greeting", top.get("greeting"), None),
        ("closing", top.get("closing"), None),
    ]
    # Shapes are checked where each part is parsed; only well-formed parts are read here.
    prompts = top.get("prompts")
    if isinstance(prompts, dict):
        places += [(f"prompts.{name}", prompts[name], name) for name in prompts]
    questions = top.get("questions")
    for i, question in enumerate(questions if isinstance(questions, list) else []):
        places.append((f"questions[{i}]", question, None))
    for path, value, prompt_name in places:
        for text in _texts(value):
            for name in _PLACEHOLDER.findall(text):
                if name == "answer" and prompt_name == "confirmation":
                    continue
                if name not in PLACEHOLDERS:
                    f.fail(path, f"unknown placeholder {{{name}}}; one of "
                           + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))  # fmt: skip
                if name not in fallbacks and _NEEDS_NO_FALLBACK.get(prompt_name or "") != name:
                    f.fail(path, f"{{{name}}} needs a fallback wording in fallbacks.{name}, "
                           "said when the call's context lacks the value")  # fmt: skip


def with_ask_if(
    f: File, q: Question, item: object, path: str, questions: tuple[Question, ...]
) -> Question:
    raw = item.get("ask_if") if isinstance(item, dict) else None
    if raw is None:
        return q
    earlier = {o.id: o for o in questions if o.order < q.order}
    condition = _condition(f, raw, f"{path}.ask_if", earlier)
    if isinstance(condition, Condition):
        condition = AskIf("all", (condition,))
    return replace(q, ask_if=condition)


def _condition(
    f: File, value: object, path: str, earlier: Mapping[str, Question]
) -> Condition | AskIf:
    if isinstance(value, list):
        value = {"all": value}
    if isinstance(value, dict) and ("all" in value or "any" in value):
        data = f.obj(value, path, frozenset({"all", "any"}))
        if len(data) != 1:
            f.fail(path, "give either all or any, not both")
        mode: Literal["all", "any"] = "all" if "all" in data else "any"
        parts = data[mode]
        if not isinstance(parts, list) or not parts:
            f.fail(f"{path}.{mode}", "must be a non-empty list of conditions")
        return AskIf(mode, tuple(
            _condition(f, part, f"{path}.{mode}[{i}]", earlier) for i, part in enumerate(parts)
        ))  # fmt: skip
    data = f.obj(value, path, frozenset({"question", "equals", "one_of", "at_least", "at_most"}))
    target_id = f.text(data, "question", path)
    target = earlier.get(target_id)
    if target is None:
        f.fail(f"{path}.question", f"{target_id!r} is not a question asked before this one")
    if target.type == "open_text":
        f.fail(f"{path}.question", f"{target_id!r} is open_text: its answers cannot be tested")
    tests = [k for k in ("equals", "one_of", "at_least", "at_most") if k in data]
    if not tests:
        f.fail(path, "needs a test: equals, one_of, at_least or at_most")
    for key in ("equals", "one_of"):
        if key not in data:
            continue
        values = data[key] if key == "one_of" else [data[key]]
        if key == "one_of" and (not isinstance(values, list) or not values):
            f.fail(f"{path}.one_of", "must be a non-empty list")
        for j, v in enumerate(values):
            where = f"{path}.one_of[{j}]" if key == "one_of" else f"{path}.equals"
            if isinstance(v, bool) or not isinstance(v, str | int) or not target.accepts(v):
                f.fail(where, f"{v!r} is not {expected(target)} (answers of {target_id!r})")
    bounds: dict[str, int | None] = {}
    for key in ("at_least", "at_most"):
        if key in data and target.type not in ("rating", "numeric"):
            f.fail(f"{path}.{key}", f"{target_id!r} is {target.type}: only rating and numeric "
                   "answers have bounds")  # fmt: skip
        bounds[key] = f.integer(data, key, path, None)
    return Condition(
        target_id,
        equals=data.get("equals"),
        one_of=frozenset(data["one_of"]) if "one_of" in data else None,
        at_least=bounds["at_least"],
        at_most=bounds["at_most"],
    )
