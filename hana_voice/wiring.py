"""Start-up wiring of the questionnaires, the results store, the outbox and the prompt cache.

- Questionnaires are loaded and validated in ``create_app`` (a bad file stops start-up).
- While serving: the results store is open (SQLite, or PostgreSQL when DATABASE_URL is set)
  and keeps itself up (held writes, heartbeats), the outbox worker delivers finished calls,
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
from hana_voice.questionnaire import Prompt, Questionnaire, load_questionnaires
from hana_voice.questionnaire.personal import render
from hana_voice.results.outbox import OutboxWorker
from hana_voice.results.routes import calls_blueprint
from hana_voice.results.store import ResultStore
from hana_voice.services import Services

log = logging.getLogger(__name__)


#: Prompts said whole at the end of a call (transfer_failed: a promised transfer failed).
ENDING_PROMPTS = (
    "escalation_transfer",
    "escalation_message",
    "consent_refused",
    "stopped",
    "transfer_failed",
    "wrong_person",
    "callback",
    "do_not_call",
)


def prompt_texts(questionnaire: Questionnaire) -> Iterator[str]:
    """Every fixed text the dialog may speak whole, as the dialog composes it.

    Placeholders are filled with the template's fallbacks: the texts a call says when its
    context lacks the values. Texts with a context value are personal and never cached.
    """
    prompts = questionnaire.prompts

    def fixed(prompt: Prompt) -> str:
        return render(prompt, {}, questionnaire.fallbacks)[0].spoken

    retry_prefixes = ("", fixed(prompts.no_response) + " ", fixed(prompts.not_understood) + " ")
    for prefix in retry_prefixes:
        yield prefix + fixed(questionnaire.greeting)
        for question in questionnaire.questions:
            yield prefix + fixed(question.prompt)
    yield fixed(questionnaire.closing)
    for name in ENDING_PROMPTS:
        yield fixed(prompts.get(name))


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
        if settings.database_url is None:
            await trio.to_thread.run_sync(private_database, settings.database_path)
        # SQLite under DATA_DIR, or PostgreSQL shared by replicas (DATABASE_URL). A worker
        # process (WORKERS > 1) on SQLite must not take its siblings' live calls for dead
        # ones: the supervisor recovered interrupted calls once, before starting the workers.
        # On PostgreSQL every worker is a replica and recovers only what is safe.
        recover = settings.worker_index is None or settings.database_url is not None
        async with ResultStore.open_settings(settings, recover=recover) as store:
            if settings.database_url is None:
                await trio.to_thread.run_sync(private_database, settings.database_path)
            services.extras["store"] = store
            services.extras["results_health"] = store.health
            worker = OutboxWorker(store, settings)
            services.extras["outbox_backlog"] = worker.backlog
            await app.nursery.start(store.maintain)
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
