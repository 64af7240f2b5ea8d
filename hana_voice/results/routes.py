"""``GET /calls/<session_id>``: a stored call's answers, status and delivery state.

The body holds patient answers, so the route requires ``Authorization: Bearer
<VOICE_SERVICE_SECRET>`` (compared in constant time). Errors use the service's JSON shape
``{"error": {"code", "message"}}``: 503 when the secret is not configured or the database
cannot be read, 401 for a missing or wrong secret, 404 for an unknown session.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from quart import Blueprint, Response, jsonify, request

from hana_voice.errors import StoreError
from hana_voice.results.store import ResultStore
from hana_voice.settings import Settings


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _bearer_matches(header: str, secret: str) -> bool:
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), secret.encode()
    )


def calls_blueprint(get_store: Callable[[], ResultStore], settings: Settings) -> Blueprint:
    """A blueprint serving stored calls from the store ``get_store()`` returns."""
    blueprint = Blueprint("calls", __name__)

    @blueprint.get("/calls/<session_id>")
    async def get_call(session_id: str) -> Response:
        secret = settings.voice_service_secret
        if secret is None:
            return _error(503, "auth_not_configured", "VOICE_SERVICE_SECRET is not set")
        if not _bearer_matches(request.headers.get("Authorization", ""), secret):
            return _error(401, "unauthorized", "missing or wrong bearer secret")
        try:
            call = await get_store().get_call(session_id)
        except StoreError as exc:
            return _error(503, StoreError.code, str(exc))
        if call is None:
            return _error(404, "not_found", "no call with this session id")
        return jsonify(call)

    return blueprint
