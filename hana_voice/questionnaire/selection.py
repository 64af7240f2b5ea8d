"""Which questionnaire a call runs: the explicit id, else the call context, else the default.

Context keys looked at, in this order (the first non-empty one wins): ``questionnaire_id``,
``questionnaire``, ``template_id``, ``survey_id``. They are read at the top level of the
context and inside the nested mappings telephony providers put custom values in:
``custom`` / ``custom_parameters`` / ``customParameters`` (Twilio's start message) and
``metadata``. Maqsam custom keys and the browser start message arrive at the top level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hana_voice.errors import HanaError
from hana_voice.questionnaire.template import Questionnaire

CONTEXT_KEYS = ("questionnaire_id", "questionnaire", "template_id", "survey_id")
NESTED_KEYS = ("custom", "custom_parameters", "customParameters", "metadata")


class UnknownQuestionnaire(HanaError):
    """A call asked for a questionnaire id that is not loaded."""

    code = "unknown_questionnaire"

    def __init__(self, questionnaire_id: str, known: tuple[str, ...] = ()) -> None:
        self.questionnaire_id = questionnaire_id
        self.known = known
        super().__init__(
            f"no questionnaire {questionnaire_id!r}; loaded: {', '.join(known) or 'none'}"
        )


def context_questionnaire_id(context: Mapping[str, Any]) -> str | None:
    """The questionnaire id named in a call's context, if any."""
    scopes: list[Mapping[str, Any]] = [context]
    scopes += [v for k in NESTED_KEYS if isinstance(v := context.get(k), Mapping)]
    for scope in scopes:
        for key in CONTEXT_KEYS:
            value = scope.get(key)
            if isinstance(value, bool) or not isinstance(value, str | int):
                continue
            text = str(value).strip()
            if text:
                return text
    return None


def select_questionnaire(
    questionnaires: Mapping[str, Questionnaire],
    requested_id: str | None,
    context: Mapping[str, Any],
    default_id: str,
) -> Questionnaire:
    """The questionnaire for a call; raise UnknownQuestionnaire for an id not loaded."""
    wanted = (requested_id or "").strip() or context_questionnaire_id(context) or default_id
    found = questionnaires.get(wanted)
    if found is None:
        raise UnknownQuestionnaire(wanted, tuple(sorted(questionnaires)))
    return found
