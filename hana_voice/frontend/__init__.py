"""Working with the Hana front end as it is (../shared/frontend-contract.md).

- :mod:`~hana_voice.frontend.convert`: a ``template_versions`` row -> a Questionnaire;
- :mod:`~hana_voice.frontend.source`: those templates read from the front end's PostgreSQL
  (TEMPLATES_DATABASE_URL), cached, refreshed, looked up at call start;
- :mod:`~hana_voice.frontend.selection`: which questionnaire a call runs;
- :mod:`~hana_voice.frontend.health`: the dashboard's /health fields;
- :mod:`~hana_voice.frontend.cors`: CORS for the front end's browser pages.

docs/frontend.md tells how the two sides fit.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import trio

from hana_voice.frontend.convert import TemplateTexts
from hana_voice.frontend.cors import install_cors
from hana_voice.frontend.selection import TEMPLATE_SOURCE
from hana_voice.frontend.source import TemplateSource

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.services import Services


def install(app: QuartTrio, services: Services) -> None:
    """The front end's plugin: CORS, and the template source when a database is configured.

    The shared prompts file is validated here, so a bad TEMPLATES_PROMPTS_FILE stops start-up
    like a bad questionnaire file; the database itself is only reached once serving.
    """
    settings = services.settings
    install_cors(app, settings)
    if settings.templates_database_url is None:
        return
    texts = TemplateTexts.configured(
        settings.templates_greeting, settings.templates_closing, settings.templates_prompts_file
    )
    source = TemplateSource(
        settings.templates_database_url,
        texts,
        refresh_seconds=settings.templates_refresh_seconds,
        pool_size=settings.templates_pool_size,
        timeout=settings.templates_timeout,
    )
    services.extras[TEMPLATE_SOURCE] = source

    @app.while_serving
    async def templates_lifespan() -> AsyncGenerator[None, None]:
        scope = trio.CancelScope()

        async def refresher(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await source.run(task_status=task_status)

        # Started, not awaited: a database that is down must not hold the service's start.
        await app.nursery.start(refresher)
        yield
        scope.cancel()
