"""Running the app under Hypercorn's trio worker, with graceful shutdown.

On SIGTERM (every Railway redeploy) or SIGINT: /health turns 503, new sessions are refused,
Hypercorn stops accepting connections, live calls run on for SHUTDOWN_GRACE seconds, then
the rest are closed with 1001 "server restarting".
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart_trio import QuartTrio

from hana_voice.calls.endpoints import ENDPOINTS
from hana_voice.calls.keepalive import install_keepalive
from hana_voice.guard import handshake, refusal, wire
from hana_voice.logs import log_event
from hana_voice.services import services_of
from hana_voice.settings import Settings

log = logging.getLogger(__name__)


def hypercorn_config(settings: Settings, bind: str | None = None) -> Config:
    config = Config()
    config.bind = [bind or f"{settings.host}:{settings.port}"]
    config.worker_class = "trio"
    config.websocket_max_message_size = settings.max_message_bytes
    config.graceful_timeout = settings.shutdown_grace + 10
    config.accesslog = None
    # Through the root logger, so Hypercorn's own lines come out as JSON too.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = 75
    # Pings keep /ws/echo and /ws/tts open while the client lives (calls/keepalive.py).
    install_keepalive(config, settings)
    # Half-open handshakes: bounded in time, counted per address (hana_voice.guard.handshake).
    config.ssl_handshake_timeout = settings.handshake_timeout
    config.hana_handshakes = handshake.HandshakeGuard(  # type: ignore[attr-defined]  # ours
        settings.handshake_timeout,
        0 if settings.trust_forwarded_for else settings.max_handshakes_per_address,
    )
    return config


async def wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log_event(log, logging.INFO, "service.signal", signal=signal.Signals(signum).name)
            return


def guard_hypercorn_overflow() -> None:
    """Keep a too-big message from crashing the whole server (Hypercorn 0.18.0).

    When a message passes ``websocket_max_message_size`` Hypercorn sends close 1009 but keeps
    the half-filled buffer; the peer's next message of the other kind (text after binary, or
    binary after text) is then written into it and raises TypeError, which escapes the
    connection task and ends ``serve`` for every call. Found by tests/hardening/
    test_wire_fuzz.py. Once a buffer has overflowed, every later message on that connection
    is refused the same way (the close is already on its way; repeated closes are no-ops).
    """
    from hypercorn.protocol.ws_stream import FrameTooLargeError, WebsocketBuffer

    original = WebsocketBuffer.extend
    if getattr(original, "hana_guarded", False):
        return

    def extend(self: WebsocketBuffer, event: Any) -> None:
        if self.length > self.max_length:
            raise FrameTooLargeError()
        original(self, event)

    extend.hana_guarded = True  # type: ignore[attr-defined]  # marks the patch as applied
    WebsocketBuffer.extend = extend  # type: ignore[method-assign]  # no upstream fix yet


async def serve(
    app: QuartTrio,
    config: Config,
    *,
    trigger: Callable[[], Awaitable[None]] = wait_for_signal,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``trigger`` returns, then drain live sessions and stop."""
    guard_hypercorn_overflow()
    wire.install()  # malformed frames get a close frame (hana_voice.guard.wire)
    handshake.install()
    services = services_of(app)
    # Over the cap, browser WebSockets are refused before Quart sees them (guard.refusal).
    capped = frozenset(e.path for e in ENDPOINTS if e.kind == "browser")
    guard = getattr(config, "hana_handshakes", None)
    turns = guard.work if guard is not None else None
    wrapped = refusal.wrap(app.asgi_app, services, capped, turns)  # type: ignore[arg-type]  # ASGI
    app.asgi_app = wrapped  # type: ignore[method-assign,assignment]  # an ASGI callable

    async def shutdown_trigger() -> None:
        await trigger()
        services.registry.start_draining()
        # Drain in the app's nursery, which outlives the connections Hypercorn is closing.
        app.nursery.start_soon(_drain, app)

    await hypercorn_serve(
        app,
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


async def _drain(app: QuartTrio) -> None:
    services = services_of(app)
    ended = await services.registry.drain(services.settings.shutdown_grace)
    log_event(log, logging.INFO, "service.drained", ended_sessions=ended)


def run(settings: Settings) -> None:
    from hana_voice.app import create_app

    if settings.workers > 1:
        from hana_voice.workers import run_workers

        raise SystemExit(run_workers(settings))

    app = create_app(settings)
    trio.run(serve, app, hypercorn_config(settings))
