"""The HTTP endpoints over a real Hypercorn server: info, every health state, auth token."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, cast

import jwt
import trio

from hana_voice.engines.manager import Loaders
from hana_voice.errors import ModelMissingError
from hana_voice.settings import Settings
from tests.conftest import SECRET, RunningServer, run_server

ROOT = Path(__file__).resolve().parents[2]


class _Engine:
    name = "fake"
    voice = "fake"
    sample_rate = 16000
    supports_grammar = False


def _ok(settings: Settings) -> Any:
    return _Engine()


def _missing(settings: Settings) -> Any:
    raise ModelMissingError(f"{settings.vosk_model_path}: missing am/final.mdl")


def _broken(settings: Settings) -> Any:
    raise RuntimeError("library failed to initialise")


def loaders(stt: Any = _ok, tts: Any = _ok) -> Loaders:
    return Loaders(
        stt=cast(Any, stt),
        espeak=cast(Any, tts),
        xtts=cast(Any, _broken),
        xtts_present=lambda s: False,
    )


async def _health(server: RunningServer) -> tuple[int, dict[str, Any]]:
    async with server.client() as client:
        response = await client.get("/health")
    return response.status_code, response.json()


async def _wait_loaded(server: RunningServer) -> None:
    with trio.fail_after(10):
        await server.services.engines.loaded.wait()


async def test_index_lists_endpoints_models_capabilities(server: RunningServer) -> None:
    async with server.client() as client:
        body = (await client.get("/")).json()
    assert body["service"] == "hana-voice"
    paths = {e["path"] for e in body["endpoints"]}
    assert {"GET /health", "WS /ws/maqsam", "WS /ws/echo"} <= paths
    assert body["models"]["stt"]["engine"] == "vosk"
    assert "barge_in" in body["capabilities"]


async def test_health_skipped(server: RunningServer) -> None:
    await _wait_loaded(server)
    code, body = await _health(server)
    assert code == 200
    assert body["status"] == "degraded"
    assert body["engines"]["stt"]["state"] == "skipped"
    assert body["engines"]["tts"]["state"] == "skipped"
    assert body["sessions"] == {"active": 0, "max": 10, "pending": 0}
    assert body["prompt_cache"] == {"state": "off"}
    assert body["version"]
    assert body["uptime_seconds"] >= 0


async def test_health_loading_then_healthy(settings: Settings) -> None:
    release = threading.Event()

    def slow(s: Settings) -> Any:
        release.wait(20)
        return _Engine()

    settings = settings.with_overrides(skip_model_loading=False)
    async with run_server(settings, loaders(stt=slow)) as server:
        with trio.fail_after(10):
            await server.services.engines.stt_loading.wait()
            # /health answers at once while the model is still loading.
            with trio.fail_after(1):
                code, body = await _health(server)
            # The finer state stays in "state"; "status" is in the dashboard's three words.
            assert (code, body["state"], body["status"]) == (503, "loading", "degraded")
            assert body["engines"]["stt"]["state"] == "loading"
            release.set()
            await _wait_loaded(server)
        code, body = await _health(server)
        assert (code, body["status"]) == (200, "healthy")
        assert body["engines"]["stt"]["state"] == "loaded"


async def test_health_missing_model_is_degraded(settings: Settings) -> None:
    settings = settings.with_overrides(skip_model_loading=False)
    async with run_server(settings, loaders(stt=_missing)) as server:
        await _wait_loaded(server)
        code, body = await _health(server)
    assert (code, body["status"]) == (200, "degraded")
    assert body["engines"]["stt"]["state"] == "missing"
    assert "final.mdl" in body["engines"]["stt"]["error"]
    assert body["engines"]["tts"]["state"] == "loaded"


async def test_health_all_failed_is_unhealthy(settings: Settings) -> None:
    settings = settings.with_overrides(skip_model_loading=False)
    async with run_server(settings, loaders(stt=_broken, tts=_broken)) as server:
        await _wait_loaded(server)
        code, body = await _health(server)
    assert (code, body["state"], body["status"]) == (503, "unhealthy", "error")
    assert body["engines"]["tts"]["state"] == "failed"
    assert "library failed to initialise" in body["engines"]["tts"]["error"]


async def test_xtts_failure_falls_back_to_espeak(settings: Settings) -> None:
    settings = settings.with_overrides(skip_model_loading=False, tts_engine="xtts")
    async with run_server(settings, loaders()) as server:
        await _wait_loaded(server)
        code, body = await _health(server)
    assert (code, body["status"]) == (200, "degraded")
    assert body["engines"]["tts"]["name"] == "espeak"
    assert body["engines"]["tts"]["state"] == "loaded"
    assert body["engines"]["tts_preferred"]["state"] == "failed"


async def test_xtts_failure_without_fallback_stays_failed(settings: Settings) -> None:
    settings = settings.with_overrides(
        skip_model_loading=False, tts_engine="xtts", tts_fallback=False
    )
    async with run_server(settings, loaders()) as server:
        await _wait_loaded(server)
        _, body = await _health(server)
    assert body["engines"]["tts"]["name"] == "xtts"
    assert body["engines"]["tts"]["state"] == "failed"
    assert server.services.engines.tts is None


async def test_maqsam_status(settings: Settings) -> None:
    async with run_server(settings) as server, server.client() as client:
        body = (await client.get("/maqsam/status")).json()
    assert body["configured"] is False
    assert body["status"] == "not configured"
    assert "/ws/maqsam/healthcare" in body["endpoints"]
    async with (
        run_server(settings.with_overrides(maqsam_token="t" * 20)) as server,
        server.client() as client,
    ):
        response = await client.get("/maqsam/status")
    body = response.json()
    assert body["configured"] is True
    assert body["live_calls"] == 0
    assert "t" * 20 not in response.text


async def test_auth_token_minting(server: RunningServer) -> None:
    async with server.client() as client:
        assert (await client.get("/auth/token")).status_code == 401
        wrong = await client.get("/auth/token", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await client.get(
            "/auth/token", params={"ttl": "60"}, headers={"Authorization": f"Bearer {SECRET}"}
        )
        too_long = await client.get(
            "/auth/token", params={"ttl": "7200"}, headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert ok.status_code == 200
    claims = jwt.decode(ok.json()["token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60
    assert too_long.status_code == 400


async def test_auth_token_without_secret_configured(settings: Settings) -> None:
    async with (
        run_server(settings.with_overrides(voice_service_secret=None)) as server,
        server.client() as client,
    ):
        response = await client.get("/auth/token", headers={"Authorization": "Bearer x"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth_not_configured"


async def test_http_rate_limit_gives_429_with_retry_after(settings: Settings) -> None:
    async with (
        run_server(settings.with_overrides(rate_limit_per_minute=3)) as server,
        server.client() as client,
    ):
        codes = [(await client.get("/")).status_code for _ in range(4)]
        limited = await client.get("/maqsam/status")
        health = await client.get("/health")
    assert codes == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    assert health.status_code == 200  # health checkers are never rate limited


async def test_unknown_path_is_json_404(server: RunningServer) -> None:
    async with server.client() as client:
        response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_railway_json_fields() -> None:
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["build"]["buildCommand"] == "uv sync --frozen --no-dev"
    start = config["deploy"]["startCommand"]
    assert "$PORT" in start and "serve" in start
    assert config["deploy"]["healthcheckPath"] == "/health"
    assert 60 <= config["deploy"]["healthcheckTimeout"] <= 300
    assert config["deploy"]["restartPolicyType"] == "ON_FAILURE"
    text = (ROOT / "railway.json").read_text().lower()
    assert "secret" not in text and "token" not in text
