"""The plain HTTP endpoints: service info, health, Maqsam status, token minting.

/health never runs inference and never waits on a model: it reads states that the engine
manager keeps up to date, so it answers from the first second after start.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from hana_voice import SERVICE_NAME, __version__
from hana_voice.auth import MAX_TOKEN_SECONDS, bearer, mint_token, same
from hana_voice.calls.endpoints import ENDPOINTS as WS_ENDPOINTS
from hana_voice.frontend.health import add_dashboard_fields
from hana_voice.guard.principal import claims_from
from hana_voice.services import Services, services_of

HTTP_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("GET /", "service name, version, endpoints, models and capabilities"),
    ("GET /health", "engine states, sessions and uptime; 200 healthy/degraded, 503 otherwise"),
    ("GET /maqsam/status", "whether the Maqsam integration is configured"),
    ("GET /auth/token", "mint a short-lived token for /ws/secure* (bearer secret)"),
    ("GET /calls/<session_id>", "a stored call's answers (bearer secret)"),
    ("GET /metrics", "Prometheus metrics"),
    ("GET /demo", "browser demo of a questionnaire"),
)
#: Every endpoint with one line each, for GET /; the WebSocket ones from their own table.
ENDPOINTS = HTTP_ENDPOINTS + tuple((f"WS {e.path}", e.description) for e in WS_ENDPOINTS)
MAQSAM_PATHS = tuple(e.path for e in WS_ENDPOINTS if e.kind == "maqsam")

bp = Blueprint("http", __name__)


def _services() -> Services:
    return services_of(current_app)  # type: ignore[arg-type]  # our app is always QuartTrio


def error_response(status: int, code: str, message: str, **headers: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for key, value in headers.items():
        response.headers[key.replace("_", "-")] = value
    return response


def bearer_ok(expected: str | None) -> Response | None:
    """None when the request carries ``Authorization: Bearer <expected>``, else an error."""
    if expected is None:
        return error_response(503, "auth_not_configured", "VOICE_SERVICE_SECRET is not set")
    if not same(bearer(request.headers.get("Authorization")), expected):
        return error_response(401, "unauthorized", "missing or wrong bearer secret")
    return None


@bp.get("/")
async def index() -> Response:
    s = _services()
    engines = s.engines.health()
    return jsonify(
        {
            "service": SERVICE_NAME,
            "version": __version__,
            "endpoints": [{"path": path, "description": desc} for path, desc in ENDPOINTS],
            "models": {
                "stt": {"engine": "vosk", "model": s.settings.vosk_model_path.name},
                "tts": {"engine": engines["tts"]["name"], "model": engines["tts"]["model"]},
            },
            "capabilities": {
                "languages": ["ar"],
                "audio_encodings": ["pcm_s16le", "mulaw", "wav", "webm/opus (legacy /ws/echo)"],
                "sample_rates": [8000, 16000, 22050, 24000, 44100, 48000],
                "telephony": ["maqsam", "twilio-media-streams"],
                "questionnaires": sorted(s.extras.get("questionnaires", {})),
                "barge_in": True,
                "dtmf": True,
            },
        }
    )


@bp.get("/health")
async def health() -> tuple[Response, int]:
    s = _services()
    status = s.engines.status()
    if s.registry.draining:
        status = "unhealthy"
    body: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "uptime_seconds": round(s.uptime, 3),
        "engines": s.engines.health(),
        "sessions": {
            "active": s.registry.active,
            "max": s.registry.capacity,
            # Connections still to authenticate (not counted against the cap).
            "pending": s.registry.pending,
        },
        # Engine threads: busy now, the limit, and those still running after their call left.
        "engine_threads": {
            "busy": s.runner.limiter.borrowed_tokens,
            "limit": s.runner.limiter.total_tokens,
            "busy_beyond_call": s.runner.busy_beyond_call,
        },
        "draining": s.registry.draining,
    }
    models = s.extras.get("models")  # model auto-download (issue 15)
    if models is not None:
        body.setdefault("models", {}).update(models.health())
    # Whether fixed prompts already play with no synthesis delay (warmed at start-up).
    body["prompt_cache"] = s.extras.get(
        "prompt_cache_status",
        {"state": "waiting for tts" if s.settings.warm_prompt_cache else "off"},
    )
    backlog = s.extras.get("outbox_backlog")
    if callable(backlog):
        body["outbox"] = backlog()
    # The results store: degraded while writes wait in memory for the database (issue 13).
    results_health = s.extras.get("results_health")
    if callable(results_health):
        body["results"] = results = results_health()
        if results["state"] == "degraded" and body["status"] == "healthy":
            body["status"] = "degraded"
    code = 200 if status in ("healthy", "degraded") else 503
    # The front end's dashboard fields (status in its three words, models, timestamp).
    add_dashboard_fields(s, body)
    return jsonify(body), code


@bp.get("/maqsam/status")
async def maqsam_status() -> Response:
    s = _services()
    configured = s.settings.maqsam_token is not None
    return jsonify(
        {
            "integration": "maqsam",
            "configured": configured,
            "status": "configured" if configured else "not configured",
            "auth_methods": ["Auth header", "session.setup apiKey", "Authorization: Bearer"],
            "endpoints": list(MAQSAM_PATHS),
            "live_calls": s.registry.count_by_kind().get("maqsam", 0),
        }
    )


@bp.get("/auth/token")
async def auth_token() -> Response:
    """Mint a short-lived HS256 token for browsers, so they never hold the secret."""
    s = _services()
    refused = bearer_ok(s.settings.voice_service_secret)
    if refused is not None:
        return refused
    secret = s.settings.voice_service_secret
    assert secret is not None  # bearer_ok refused otherwise
    try:
        ttl = int(request.args.get("ttl", "900"))
    except ValueError:
        return error_response(400, "bad_request", "ttl must be a whole number of seconds")
    if not 1 <= ttl <= MAX_TOKEN_SECONDS:
        return error_response(400, "bad_request", f"ttl must be 1..{MAX_TOKEN_SECONDS} seconds")
    # Bound to a patient (and hospital, campaign), the token's call may hand results over.
    bound = claims_from(request.args)
    token = mint_token(secret, ttl, request.args.get("sub", "browser"), bound)
    return jsonify({"token": token, "expires_in": ttl, "token_type": "Bearer", "bound": bound})
