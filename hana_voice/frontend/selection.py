"""Which questionnaire a call runs: a local JSON questionnaire by its id, or a front-end template.

The id comes from the start message (``questionnaire_id`` / ``template_id``), else the call's
context (:func:`~hana_voice.questionnaire.selection.context_questionnaire_id`), else
DEFAULT_QUESTIONNAIRE. A local questionnaire with that id wins; otherwise an id that is a uuid
names a template in the front end's ``template_versions`` (TEMPLATES_DATABASE_URL).
"""

from __future__ import annotations

from hana_voice.events import CallStarted
from hana_voice.frontend.convert import canonical_id
from hana_voice.frontend.source import TemplateSource, TemplateUnavailable
from hana_voice.questionnaire.selection import UnknownQuestionnaire, context_questionnaire_id
from hana_voice.questionnaire.template import Questionnaire
from hana_voice.services import Services

TEMPLATE_SOURCE = "template_source"


def template_source(services: Services) -> TemplateSource | None:
    source = services.extras.get(TEMPLATE_SOURCE)
    return source if isinstance(source, TemplateSource) else None


def requested_id(setup: CallStarted, default_id: str) -> str:
    return (
        (setup.questionnaire_id or "").strip()
        or context_questionnaire_id(setup.context)
        or (default_id)
    )


async def choose_questionnaire(services: Services, setup: CallStarted) -> Questionnaire:
    """The call's questionnaire; raise UnknownQuestionnaire or TemplateUnavailable."""
    local: dict[str, Questionnaire] = services.extras.get("questionnaires", {})
    wanted = requested_id(setup, services.settings.default_questionnaire)
    found = local.get(wanted)
    if found is not None:
        return found
    template_id = canonical_id(wanted)
    if template_id is None:
        raise UnknownQuestionnaire(wanted[:64], tuple(sorted(local)))
    source = template_source(services)
    if source is None:
        raise TemplateUnavailable(
            template_id,
            "templates_not_configured",
            # Within the 123 bytes a close reason may hold.
            f"template {template_id}: templates are off (TEMPLATES_DATABASE_URL unset)",
        )
    return await source.get(template_id)
