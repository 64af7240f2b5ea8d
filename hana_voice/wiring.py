"""Start-up wiring of the questionnaires, the results store, the outbox and the prompt cache.

- Questionnaires are loaded and validated in ``create_app`` (a bad file stops start-up).
- While serving: the SQLite results store is open, the outbox worker delivers finished calls,
  and once TTS is ready the prompt cache is warmed with every fixed prompt of every
  questionnaire (greeting, questions with and without their retry prefixes, closing).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator

import trio
from quart_trio import QuartTrio

from hana_voice.engines.base import TextToSpeech
from hana_voice.engines.prompt_cache import PromptCache, prompt_cache_dir
from hana_voice.guard.files import private_database, private_dir
from hana_voice.logs import log_event
from hana_voice.questionnaire import Questionnaire, load_questionnaires
from hana_voice.results.outbox import OutboxWorker
from hana_voice.results.routes import calls_blueprint
from hana_voice.results.store import ResultStore
from hana_voice.services import Services

log = logging.getLogger(__name__)


def prompt_texts(questionnaire: Questionnaire) -> Iterator[str]:
    """Every fixed text the dialog may speak whole, as the dialog composes it."""
    prompts = questionnaire.prompts
    retry_prefixes = ("", prompts.no_response.spoken + " ", prompts.not_understood.spoken + " ")
    for prefix in retry_prefixes:
        yield prefix + questionnaire.greeting.spoken
        for question in questionnaire.questions:
            yield prefix + question.prompt.spoken
    yield questionnaire.closing.spoken
    for name in ("escalation_transfer", "escalation_message", "consent_refused", "stopped"):
        yield prompts.get(name).spoken


def install(app: QuartTrio, services: Services) -> None:
    settings = services.settings
    services.extras["questionnaires"] = load_questionnaires(settings.questionnaire_dir)
    cache = PromptCache(prompt_cache_dir(settings.cache_dir))
    services.extras["prompt_cache"] = cache
    app.register_blueprint(calls_blueprint(lambda: services.extras["store"], settings))

    @app.while_serving
    async def results_lifespan() -> AsyncGenerator[None, None]:
        # Private to the service's user: 0700 directory, 0600 database (hana_voice.guard).
        await trio.to_thread.run_sync(private_dir, settings.data_dir)
        await trio.to_thread.run_sync(private_database, settings.database_path)
        async with ResultStore.open(settings.database_path) as store:
            await trio.to_thread.run_sync(private_database, settings.database_path)
            services.extras["store"] = store
            worker = OutboxWorker(store, settings)
            services.extras["outbox_backlog"] = worker.backlog
            await app.nursery.start(worker.run)
            yield
        services.extras.pop("store", None)

    def warm(tts: TextToSpeech) -> None:
        if settings.warm_prompt_cache:
            app.nursery.start_soon(_warm, services, cache, tts)

    services.engines.on_tts_ready.append(warm)


async def _warm(services: Services, cache: PromptCache, tts: TextToSpeech) -> None:
    texts: list[str] = []
    for questionnaire in services.extras["questionnaires"].values():
        texts.extend(prompt_texts(questionnaire))
    distinct = list(dict.fromkeys(texts))
    services.extras["prompt_cache_status"] = {"state": "warming", "prompts": len(distinct)}
    report = await cache.warm(tts, services.runner, distinct)
    services.extras["prompt_cache_status"] = {
        "state": "ready",
        "prompts": len(distinct),
        "synthesized": report.synthesized,
        "failed": report.failed,
        "seconds": round(report.seconds, 3),
    }
    log_event(
        log,
        logging.INFO,
        "prompt_cache.warmed",
        engine=tts.name,
        cached=report.cached,
        synthesized=report.synthesized,
        failed=report.failed,
        seconds=round(report.seconds, 3),
    )
