"""The per-process services an app holds, built from Settings by ``create_app``.

Everything that lives as long as the process (engines, the limiter, the session registry,
the rate limiter, questionnaires, the results store, the prompt cache, metrics) hangs off one
``Services`` object, reached by request handlers through ``services_of(app)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from hana_voice.admission import RateLimiter, SessionRegistry
from hana_voice.engines.manager import EngineManager
from hana_voice.engines.runner import EngineRunner
from hana_voice.metrics import Metrics
from hana_voice.settings import Settings

if TYPE_CHECKING:
    from quart_trio import QuartTrio


@dataclass
class Services:
    settings: Settings
    engines: EngineManager
    registry: SessionRegistry
    rate_limiter: RateLimiter
    runner: EngineRunner
    metrics: Metrics
    started_at: float = field(default_factory=time.monotonic)
    #: Filled at start-up by the modules that own them (questionnaires, results, cache).
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, engines: EngineManager) -> Services:
        limiter = trio.CapacityLimiter(settings.max_concurrent_sessions)
        metrics = Metrics()
        return cls(
            metrics=metrics,
            settings=settings,
            engines=engines,
            registry=SessionRegistry(
                settings.max_concurrent_sessions, settings.max_pending_per_address
            ),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute),
            runner=EngineRunner(
                limiter, settings.processing_timeout, observe=metrics.engine_seconds
            ),
        )

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_at


def services_of(app: QuartTrio) -> Services:
    services: Services = app.extensions["hana"]
    return services
