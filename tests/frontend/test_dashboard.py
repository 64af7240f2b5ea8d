"""/health as the front end's dashboard reads it, and CORS for its browser pages."""

from __future__ import annotations

import time

import pytest

from hana_voice.errors import SettingsError
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready
from tests.conftest import RunningServer, run_server

FRONT_END = "https://hana.example.com"


async def test_health_carries_the_dashboard_fields(server: RunningServer) -> None:
    await engines_ready(server)
    async with server.client() as http:
        response = await http.get("/health")
    body = response.json()
    # Today's fields are kept...
    assert {"version", "uptime_seconds", "engines", "sessions", "draining"} <= set(body)
    # ...and the dashboard's are there: three-word status, booleans, epoch milliseconds.
    assert body["status"] == "degraded" and body["state"] == "degraded"
    assert (body["models"]["vosk_arabic"], body["models"]["coqui_xtts"]) == (False, False)
    assert abs(body["timestamp"] - time.time() * 1000) < 60_000
    assert isinstance(body["timestamp"], int)


async def test_health_with_loaded_engines_is_healthy(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with server.client() as http:
            body = (await http.get("/health")).json()
    assert (body["status"], body["models"]["vosk_arabic"]) == ("healthy", True)
    assert body["models"]["coqui_xtts"] is False  # the fake TTS stands in for espeak


async def test_cors_for_the_front_ends_origin_only(settings: Settings) -> None:
    settings = settings.with_overrides(nextjs_api_url=FRONT_END + "/api")
    async with run_server(settings) as server, server.client() as http:
        allowed = await http.get("/health", headers={"Origin": FRONT_END})
        status = await http.get("/maqsam/status", headers={"Origin": FRONT_END})
        other = await http.get("/health", headers={"Origin": "https://evil.example"})
        preflight = await http.options(
            "/maqsam/status",
            headers={
                "Origin": FRONT_END,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        refused = await http.options(
            "/health",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert allowed.headers["access-control-allow-origin"] == FRONT_END
    assert "Origin" in allowed.headers["vary"]
    assert status.headers["access-control-allow-origin"] == FRONT_END
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == FRONT_END
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert not any(h.startswith("access-control-") for h in refused.headers)


async def test_cors_allowed_origins_list_and_star(settings: Settings) -> None:
    listed = settings.with_overrides(cors_allowed_origins=("https://a.example", FRONT_END))
    async with run_server(listed) as server, server.client() as http:
        a = await http.get("/health", headers={"Origin": "https://a.example"})
        b = await http.get("/health", headers={"Origin": "https://b.example"})
    assert a.headers["access-control-allow-origin"] == "https://a.example"
    assert "access-control-allow-origin" not in b.headers
    anyone = settings.with_overrides(cors_allowed_origins=("*",))
    async with run_server(anyone) as server, server.client() as http:
        c = await http.get("/health", headers={"Origin": "https://c.example"})
    assert c.headers["access-control-allow-origin"] == "*"


async def test_no_cors_without_configuration(server: RunningServer) -> None:
    async with server.client() as http:
        response = await http.get("/health", headers={"Origin": FRONT_END})
    assert "access-control-allow-origin" not in response.headers


def test_settings_of_the_front_end() -> None:
    s = Settings.from_env(
        {
            "NEXTJS_API_URL": "https://Hana.example.com/app",
            "TEMPLATES_DATABASE_URL": "postgresql://reader:pw@db:5432/hana",
        }
    )
    assert s.cors_origins == ("https://hana.example.com",)
    assert s.templates_refresh_seconds == 60.0
    assert "pw" not in repr(s)
    assert Settings.from_env({"CORS_ALLOWED_ORIGINS": "https://a.b, *"}).cors_origins == (
        "https://a.b",
        "*",
    )
    for env, variable in [
        ({"TEMPLATES_DATABASE_URL": "mysql://x:secretpw@h/db"}, "TEMPLATES_DATABASE_URL"),
        ({"CORS_ALLOWED_ORIGINS": "https://a.b/path"}, "CORS_ALLOWED_ORIGINS"),
        ({"TEMPLATES_REFRESH_SECONDS": "0"}, "TEMPLATES_REFRESH_SECONDS"),
        ({"WS_PING_INTERVAL": "-1"}, "WS_PING_INTERVAL"),
    ]:
        with pytest.raises(SettingsError) as caught:
            Settings.from_env(env)
        assert caught.value.variable == variable
        assert "secretpw" not in str(caught.value)
