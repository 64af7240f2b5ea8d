"""Personal prompts: ``{patient_name}``, ``{hospital_name}``, ``{doctor_name}``,
``{appointment_date}`` filled from the call's context, or the template's fallback wording.

Pure. A prompt rendered with a value from the context is *personal*: it holds patient data,
so it is synthesised for its call only and never enters the prompt cache (memory or disk) or a
log. A prompt rendered only with fallbacks is the same on every call and stays cacheable.
Values are read from the context's top level or its ``custom`` object (Maqsam's custom
variables, Twilio's parameters), stripped, and at most :data:`MAX_VALUE` characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hana_voice.questionnaire.template import PLACEHOLDERS, Prompt

MAX_VALUE = 120
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def personal_values(context: Mapping[str, Any]) -> dict[str, str]:
    """The placeholder values a call's context carries (empty and non-text values skipped)."""
    raw_custom = context.get("custom")
    custom: Mapping[str, Any] = raw_custom if isinstance(raw_custom, Mapping) else {}
    values: dict[str, str] = {}
    for name in PLACEHOLDERS:
        value = context.get(name) or custom.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = " ".join(str(value).split())[:MAX_VALUE]
            if text:
                values[name] = text
    return values


def render(
    prompt: Prompt, values: Mapping[str, str], fallbacks: Mapping[str, str]
) -> tuple[Prompt, bool]:
    """``prompt`` with its placeholders filled; True when a context value was used."""
    used = False

    def fill(match: re.Match[str]) -> str:
        nonlocal used
        name = match.group(1)
        if name in values:
            used = True
            return values[name]
        return fallbacks.get(name, "")

    text = _PLACEHOLDER.sub(fill, prompt.text)
    spoken = _PLACEHOLDER.sub(fill, prompt.speech_text) if prompt.speech_text else None
    return Prompt(text, spoken), used


def has_placeholders(prompt: Prompt) -> bool:
    return bool(_PLACEHOLDER.search(prompt.text + (prompt.speech_text or "")))
