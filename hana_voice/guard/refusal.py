"""Refusing a WebSocket over the session cap, cheaply (issue 11: during a burst of 100
connections against a cap of 10, /health p99 reached 33-98 ms, because the one event loop
took ~2 ms to refuse each connection).

Most of that cost was the framework, not the decision: a refused connection went through
Quart's websocket context, the endpoint's admission checks and the codec set-up only to be
closed. :func:`wrap` puts a check in front of the Quart app, at the ASGI level: a WebSocket
for an endpoint that counts against the cap at its handshake (the browser endpoints; telephony
waits *pending*, see hana_voice.admission), arriving while every slot is taken or the server
is draining, is accepted and closed at once with the same code and reason the endpoint would
have sent (1013 "server busy: N/N sessions", 1001 while draining). The rate limit still counts
it, first, as the endpoint does. Browsers still read the code and reason.

Everything else goes to the app unchanged; the endpoint repeats the checks, so a connection
that slips past this one while a slot frees up is decided by the registry as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

from hana_voice.admission import CLOSE_BUSY, CLOSE_GOING_AWAY, CLOSE_POLICY, client_address
from hana_voice.services import Services

__all__ = ["wrap"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def wrap(
    asgi_app: ASGIApp,
    services: Services,
    capped_paths: frozenset[str],
    turns: trio.CapacityLimiter | None = None,
) -> ASGIApp:
    """``asgi_app`` behind the cheap refusal of WebSockets on ``capped_paths``; ``turns``
    (the handshake limiter) spreads a burst of refusals so other requests interleave."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope.get("path") not in capped_paths:
            await asgi_app(scope, receive, send)
            return
        refusal = _refusal(scope, services)
        if refusal is None:
            await asgi_app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        code, reason = refusal
        async with turns if turns is not None else contextlib.nullcontext():
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": code, "reason": reason})

    return app


def _refusal(scope: Scope, services: Services) -> tuple[int, str] | None:
    registry, settings = services.registry, services.settings
    if registry.draining:
        registry.refuse("draining")
        return CLOSE_GOING_AWAY, "server restarting: try again shortly"
    if registry.active < registry.capacity:
        return None
    client = scope.get("client")
    forwarded = None
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
    address = client_address(client[0] if client else None, forwarded, settings.trust_forwarded_for)
    if services.rate_limiter.check(address) is not None:
        registry.refuse("rate_limited")
        return (
            CLOSE_POLICY,
            f"rate limit: more than {settings.rate_limit_per_minute} connections a minute",
        )
    registry.refuse("busy")
    return CLOSE_BUSY, f"server busy: {registry.active}/{registry.capacity} sessions"
