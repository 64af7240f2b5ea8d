"""Prometheus metrics (``GET /metrics``), one registry per app so tests can run many apps.

What is counted: sessions live/total/refused by reason, engine call latency, STT real-time
factor, TTS time to first audio, reply latency (end of caller speech to first reply audio),
barge-ins, errors by type, dropped audio frames and the outbox backlog. Labels carry kinds,
engines and codes only: never ids, numbers or text (patient data, and unbounded cardinality).

/metrics is on by default; METRICS_ENABLED=false turns it off (404) and METRICS_TOKEN requires
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.results.store import ResultStore
    from hana_voice.services import Services

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.engine_seconds = Histogram(
            "hana_engine_call_seconds",
            "Engine call latency",
            ["what"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.stt_rtf = Histogram(
            "hana_stt_realtime_factor",
            "Recogniser busy time per second of audio, per call",
            registry=r,
            buckets=RTF_BUCKETS,
        )
        self.tts_first_audio = Histogram(
            "hana_tts_first_audio_seconds",
            "Time from a prompt's request to its first audio",
            ["source"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.reply_latency = Histogram(
            "hana_reply_latency_seconds",
            "End of caller speech (VAD) to the first byte of reply audio",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.barge_ins = Counter("hana_barge_ins", "Prompts cut by the caller", registry=r)
        self.errors = Counter("hana_errors", "Errors reported to clients", ["code"], registry=r)
        # issue 14: every call's one outcome (completed, callback_requested, ...)
        self.call_outcomes = Counter(
            "hana_call_outcomes", "Questionnaire calls by outcome", ["outcome"], registry=r
        )
        self.dropped_audio = Counter(
            "hana_audio_dropped_frames", "Caller audio frames dropped (fell behind)", registry=r
        )
        self.calls_ended = Counter(
            "hana_calls_ended", "Calls ended, by close code", ["kind", "code"], registry=r
        )
        # Telephony providers' REST API (issue 12): action hangup/transfer; result ok, failed,
        # not_configured; retries counts the attempts after the first.
        self.provider_requests = Counter(
            "hana_provider_requests",
            "Provider REST requests (hang-up, transfer), by result",
            ["provider", "action", "result"],
            registry=r,
        )
        self.provider_retries = Counter(
            "hana_provider_retries",
            "Provider REST attempts retried after a 5xx, a timeout or a network error",
            ["provider", "action"],
            registry=r,
        )

    def attach(self, services: Services) -> None:
        self.registry.register(_LiveCollector(services))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Values read from the live objects at scrape time (no double bookkeeping)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        registry = self.services.registry
        live = GaugeMetricFamily("hana_sessions_live", "Live sessions", labels=["kind"])
        by_kind = registry.count_by_kind()
        for kind in ("browser", "maqsam", "telephony"):
            live.add_metric([kind], by_kind.get(kind, 0))
        yield live
        yield GaugeMetricFamily(
            "hana_sessions_max", "MAX_CONCURRENT_SESSIONS", value=registry.capacity
        )
        yield CounterMetricFamily(
            "hana_sessions", "Sessions admitted since start", value=registry.total_admitted
        )
        refused = CounterMetricFamily(
            "hana_sessions_refused", "Connections refused, by reason", labels=["reason"]
        )
        for reason, count in sorted(registry.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        engines = GaugeMetricFamily(
            "hana_engine_up", "1 when the engine is loaded", labels=["kind", "engine", "state"]
        )
        for kind, slot in self.services.engines.health().items():
            engines.add_metric(
                [kind, slot["name"], slot["state"]], 1.0 if slot["state"] == "loaded" else 0.0
            )
        yield engines
        models = self.services.extras.get("models")  # model auto-download (issue 15)
        if models is not None:
            yield from models.metric_families()
        backlog = self.services.extras.get("outbox_backlog")
        if callable(backlog):
            outbox = GaugeMetricFamily(
                "hana_outbox_backlog", "Results awaiting hand-over, by state", labels=["state"]
            )
            for state, count in sorted(backlog().items()):
                outbox.add_metric([state], count)
            yield outbox
        yield from _results_store_metrics(self.services.extras.get("store"))


def _results_store_metrics(store: ResultStore | None) -> Iterator[Metric]:
    """The results store's outage figures (issue 13): writes held in memory and their fate."""
    if store is None:
        return
    yield GaugeMetricFamily(
        "hana_results_degraded",
        "1 while results writes wait for the database",
        value=1.0 if store.degraded_since is not None else 0.0,
    )
    yield GaugeMetricFamily(
        "hana_results_unwritten", "Results writes held in memory", value=store.unwritten
    )
    yield CounterMetricFamily(
        "hana_results_write_failures",
        "Results writes the database refused",
        value=store.write_failures,
    )
    yield CounterMetricFamily(
        "hana_results_flushed_writes",
        "Held results writes written later",
        value=store.flushed_writes,
    )
    yield CounterMetricFamily(
        "hana_results_lost_writes",
        "Held results writes lost at shutdown",
        value=store.lost_writes,
    )


def install(app: QuartTrio, services: Services) -> None:
    from quart import Response, request

    from hana_voice.auth import bearer, same
    from hana_voice.http_routes import error_response

    settings = services.settings
    services.metrics.attach(services)

    @app.get("/metrics")
    async def metrics() -> Response:
        if not settings.metrics_enabled:
            return error_response(404, "not_found", "metrics are disabled (METRICS_ENABLED)")
        token = settings.metrics_token
        if token is not None and not same(bearer(request.headers.get("Authorization")), token):
            return error_response(401, "unauthorized", "missing or wrong metrics token")
        body = services.metrics.render()
        return Response(body, content_type="text/plain; version=0.0.4; charset=utf-8")
