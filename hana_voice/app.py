"""``create_app(settings)``: the Quart-Trio application and its start-up.

Start-up order: questionnaires are validated synchronously in ``create_app`` (a bad file stops
start-up before the port opens); when serving begins, engines load in worker threads in the
app's nursery while the server already answers /health.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Response, has_request_context, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from hana_voice.admission import client_address
from hana_voice.engines.manager import EngineManager, Loaders
from hana_voice.http_routes import bp as http_bp
from hana_voice.http_routes import error_response
from hana_voice.logs import log_event
from hana_voice.services import Services
from hana_voice.settings import Settings

log = logging.getLogger(__name__)

#: Paths exempt from the per-address rate limit: health checkers and scrapers poll them.
RATE_LIMIT_EXEMPT = ("/health", "/metrics")


def create_app(settings: Settings, *, loaders: Loaders | None = None) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_message_bytes
    # Background tasks are ended by our own drain, not by Quart's 5 s default.
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = None
    services = Services.build(settings, EngineManager(settings, loaders))
    app.extensions["hana"] = services
    app.register_blueprint(http_bp)
    _install_startup(app, services)
    _install_rate_limit(app, services)
    _install_error_handlers(app)
    for plugin in _plugins():
        plugin(app, services)
    return app


def _plugins() -> list[Any]:
    """Feature modules that add routes and start-up work to the app."""
    from hana_voice.features import PLUGINS

    return list(PLUGINS)


def _install_startup(app: QuartTrio, services: Services) -> None:
    @app.before_serving
    async def start_engines() -> None:
        # Not awaited here: the server must accept connections while models load.
        app.nursery.start_soon(services.engines.load_all)
        log_event(
            log,
            logging.INFO,
            "service.starting",
            max_sessions=services.registry.capacity,
            skip_model_loading=services.settings.skip_model_loading,
        )


def _install_rate_limit(app: QuartTrio, services: Services) -> None:
    @app.before_request
    async def rate_limit() -> Response | None:
        if request.path in RATE_LIMIT_EXEMPT:
            return None
        address = client_address(
            request.remote_addr,
            request.headers.get("X-Forwarded-For"),
            services.settings.trust_forwarded_for,
        )
        wait = services.rate_limiter.check(address)
        if wait is None:
            return None
        services.registry.refuse("rate_limited")
        return error_response(
            429,
            "rate_limited",
            f"more than {services.settings.rate_limit_per_minute} requests a minute",
            Retry_After=str(max(1, round(wait))),
        )


def _install_error_handlers(app: QuartTrio) -> None:
    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        return error_response(code, name, exc.description or name)

    @app.errorhandler(Exception)
    async def internal_error(exc: Exception) -> Response:
        log_event(
            log,
            logging.ERROR,
            "http.internal_error",
            exc_type=type(exc).__name__,
            path=request.path if has_request_context() else None,
        )
        return error_response(500, "internal_error", "internal error")
