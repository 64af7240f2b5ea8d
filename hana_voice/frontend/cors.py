"""CORS for the HTTP endpoints, so the front end's browser pages can read /health and the rest.

Allowed origins: CORS_ALLOWED_ORIGINS (a comma list, or ``*``), by default the origin of
NEXTJS_API_URL. A request from an allowed origin gets ``Access-Control-Allow-Origin`` naming
that origin (with ``Vary: Origin``); a preflight (OPTIONS with
``Access-Control-Request-Method``) is answered 204 with the methods and headers allowed. Any
other origin gets no CORS header at all, so the browser blocks the read. No credentials
(cookies) are allowed: the pages need none, and the bearer secret is never for browsers.
WebSockets are not subject to CORS; their Origin check is ALLOWED_ORIGINS.
"""

from __future__ import annotations

from quart import Response, request
from quart_trio import QuartTrio

from hana_voice.settings import Settings

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
#: How long a browser may cache a preflight answer.
MAX_AGE_SECONDS = "600"


def allowed_origin(settings: Settings, origin: str | None) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when ``origin`` is not allowed."""
    allowed = settings.cors_origins
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/").lower() in allowed else None


def install_cors(app: QuartTrio, settings: Settings) -> None:
    if not settings.cors_origins:
        return

    @app.before_request
    async def preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        response = Response("", status=204)
        if allowed_origin(settings, request.headers.get("Origin")) is not None:
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = MAX_AGE_SECONDS
        return response

    @app.after_request
    async def cors_headers(response: Response) -> Response:
        value = allowed_origin(settings, request.headers.get("Origin"))
        if value is not None:
            response.headers["Access-Control-Allow-Origin"] = value
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        if value not in (None, "*"):
            response.vary.add("Origin")
        return response
