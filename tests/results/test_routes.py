"""GET /calls/<session_id>: authorisation, not found, and the stored call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import trio
from quart_trio import QuartTrio

from hana_voice.results import ResultStore, calls_blueprint
from hana_voice.settings import Settings
from tests.results.conftest import METADATA, VOICE_SECRET, Backends

AUTH = {"Authorization": f"Bearer {VOICE_SECRET}"}


@pytest.fixture
async def store(backends: Backends) -> AsyncIterator[ResultStore]:
    async with backends.open() as opened:
        await opened.start_call("s1", "tpl", 2, METADATA)
        await opened.record_answer("s1", "q1", 1, "نعم", 0.9, 1.2)
        await opened.finish_call("s1", "completed", 30.0)
        yield opened


def _app(store: ResultStore, settings: Settings) -> QuartTrio:
    app = QuartTrio(__name__)
    app.register_blueprint(calls_blueprint(lambda: store, settings))
    return app


async def test_returns_the_stored_call(
    store: ResultStore, make_settings: Callable[..., Settings]
) -> None:
    client = _app(store, make_settings()).test_client()
    with trio.fail_after(10):
        response = await client.get("/calls/s1", headers=AUTH)
        body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "completed"
    assert body["answers"][0]["response"] == "نعم"
    assert body["delivery"]["state"] == "pending"
    assert "caller_number" not in body["metadata"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": VOICE_SECRET}],
    ids=["missing", "wrong", "no-scheme"],
)
async def test_requires_the_service_secret(
    store: ResultStore, make_settings: Callable[..., Settings], headers: dict[str, str]
) -> None:
    client = _app(store, make_settings()).test_client()
    with trio.fail_after(10):
        response = await client.get("/calls/s1", headers=headers)
        body = await response.get_json()
    assert response.status_code == 401
    assert body["error"]["code"] == "unauthorized"


async def test_unknown_session_is_404(
    store: ResultStore, make_settings: Callable[..., Settings]
) -> None:
    client = _app(store, make_settings()).test_client()
    with trio.fail_after(10):
        response = await client.get("/calls/nobody", headers=AUTH)
        body = await response.get_json()
    assert response.status_code == 404
    assert body["error"]["code"] == "not_found"


async def test_unconfigured_secret_is_503(
    store: ResultStore, make_settings: Callable[..., Settings]
) -> None:
    client = _app(store, make_settings(voice_service_secret=None)).test_client()
    with trio.fail_after(10):
        response = await client.get("/calls/s1", headers=AUTH)
        body = await response.get_json()
    assert response.status_code == 503
    assert body["error"]["code"] == "auth_not_configured"
