"""Authentication and origin checks of the browser endpoints, over a real server.

Every refusal is accept-then-close, so the test client reads the close code and reason the
way a browser's CloseEvent would.
"""

from __future__ import annotations

import time

import jwt
import pytest
import trio

from hana_voice.settings import Settings
from tests.conftest import SECRET, RunningServer, run_server
from tests.wsclient import connect

SECURE = ("/ws/secure", "/ws/secure/healthcare")
OPEN = ("/ws", "/ws/healthcare-questionnaire", "/ws/echo", "/ws/tts")
BEARER = [("Authorization", f"Bearer {SECRET}")]


async def _refusal(
    server: RunningServer, path: str, headers: list[tuple[str, str]] | None = None
) -> tuple[int | None, str | None]:
    async with connect(server.ws_url + path, headers) as client:
        return await client.closed()


async def _admitted(
    server: RunningServer, path: str, headers: list[tuple[str, str]] | None = None
) -> None:
    async with connect(server.ws_url + path, headers) as client:
        if path.split("?")[0] in ("/ws/echo", "/ws/tts"):
            await client.send_json({"type": "start"})  # these wait for the dialect's frame
        ready = await client.until("ready")
        assert ready["session_id"]
        await client.send_json({"type": "stop"})
        code, _ = await client.closed()
        assert code == 1000


async def _mint(server: RunningServer, ttl: int = 300) -> str:
    with trio.fail_after(10):
        async with server.client() as http:
            response = await http.get("/auth/token", params={"ttl": ttl}, headers=dict(BEARER))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == ttl
    token: str = body["token"]
    return token


def _forged(*, iat_offset: int = 0, lifetime: int = 300, key: str = SECRET) -> str:
    now = int(time.time()) + iat_offset
    return jwt.encode({"sub": "t", "iat": now, "exp": now + lifetime}, key, algorithm="HS256")


@pytest.mark.parametrize("path", SECURE)
async def test_secure_endpoints_accept_the_bearer_secret_and_minted_tokens(
    settings: Settings, path: str
) -> None:
    async with run_server(settings) as server:
        await _admitted(server, path, BEARER)
        token = await _mint(server)
        await _admitted(server, f"{path}?token={token}")
    assert server.services.registry.active == 0


@pytest.mark.parametrize("path", SECURE)
async def test_secure_endpoints_refuse_bad_credentials_with_1008(
    settings: Settings, path: str
) -> None:
    url = path
    cases: list[tuple[str, list[tuple[str, str]] | None, str]] = [
        (url, None, "missing credentials: send a bearer secret or ?token="),
        (url, [("Authorization", "Bearer not-the-secret")], "wrong bearer credentials"),
        (f"{url}?token={_forged(iat_offset=-600)}", None, "token expired"),
        (f"{url}?token=not.a.jwt", None, "invalid token"),
        (f"{url}?token=garbage", None, "invalid token"),
        (f"{url}?token={_forged(key='x' * 40)}", None, "invalid token"),
        (f"{url}?token={_forged(lifetime=7200)}", None, "token lifetime exceeds one hour"),
        # PyJWT itself refuses a future iat (ImmatureSignatureError), before our own check.
        (f"{url}?token={_forged(iat_offset=600)}", None, "invalid token"),
    ]
    async with run_server(settings) as server:
        for target, headers, expected in cases:
            code, reason = await _refusal(server, target, headers)
            assert (code, reason) == (1008, expected), target
        assert server.services.registry.refused["unauthorized"] == len(cases)
    assert server.services.registry.active == 0


async def test_token_lifetime_over_an_hour_cannot_be_minted(settings: Settings) -> None:
    async with run_server(settings) as server:
        with trio.fail_after(10):
            async with server.client() as http:
                too_long = await http.get("/auth/token?ttl=3601", headers=dict(BEARER))
                no_secret = await http.get("/auth/token")
    assert too_long.status_code == 400
    assert no_secret.status_code == 401


async def test_secret_unset_refuses_secure_endpoints_with_a_clear_reason(
    settings: Settings,
) -> None:
    settings = settings.with_overrides(voice_service_secret=None)
    async with run_server(settings) as server:
        for path in SECURE:
            code, reason = await _refusal(server, path, BEARER)
            assert code == 1008
            assert reason == "authentication is not configured on this server (no secret set)"


@pytest.mark.parametrize("path", OPEN)
async def test_require_auth_closes_the_open_endpoints(settings: Settings, path: str) -> None:
    settings = settings.with_overrides(require_auth=True)
    async with run_server(settings) as server:
        code, reason = await _refusal(server, path)
        assert (code, reason) == (1008, "missing credentials: send a bearer secret or ?token=")
        await _admitted(server, path, BEARER)
        await _admitted(server, f"{path}?token={await _mint(server)}")


async def test_open_endpoints_need_no_credentials_by_default(settings: Settings) -> None:
    async with run_server(settings) as server:
        for path in OPEN:
            await _admitted(server, path)


async def test_allowed_origins_refuse_other_browser_origins(settings: Settings) -> None:
    settings = settings.with_overrides(allowed_origins=("https://hana.example",))
    async with run_server(settings) as server:
        for path in (*OPEN, *SECURE):
            code, reason = await _refusal(server, path, [("Origin", "https://evil.example")])
            assert (code, reason) == (1008, "origin not allowed"), path
        await _admitted(server, "/ws", [("Origin", "https://hana.example")])
        await _admitted(server, "/ws/secure", [("Origin", "https://hana.example/"), *BEARER])
        # Server-to-server clients send no Origin; the allow-list is about browsers.
        await _admitted(server, "/ws/secure", BEARER)
        assert server.services.registry.refused["origin"] == len(OPEN) + len(SECURE)
