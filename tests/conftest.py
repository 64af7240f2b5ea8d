"""Shared fixtures: a real Hypercorn server on 127.0.0.1 port 0, and settings for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from hana_voice.app import create_app
from hana_voice.engines.manager import Loaders
from hana_voice.server import hypercorn_config, serve
from hana_voice.services import Services, services_of
from hana_voice.settings import Settings
from tests.postgres import PostgresServer

SECRET = "test-secret-0123456789-abcdefghijklmnop"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a test server: no real models, state under a temporary directory."""
    return Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        vosk_model_path=tmp_path / "models" / "absent-vosk-model",
        skip_model_loading=True,
        voice_service_secret=SECRET,
        rate_limit_per_minute=0,
        warm_prompt_cache=False,
    )


@dataclass
class RunningServer:
    """A live server: its base URLs, its services, and a way to trigger shutdown."""

    http_url: str
    ws_url: str
    services: Services
    stop: trio.Event
    stopped: trio.Event

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http_url, timeout=10)


@asynccontextmanager
async def run_server(
    settings: Settings, loaders: Loaders | None = None
) -> AsyncIterator[RunningServer]:
    """Start create_app(settings) under Hypercorn's trio worker on a free loopback port."""
    app = create_app(settings, loaders=loaders)
    stop = trio.Event()
    stopped = trio.Event()

    async def runner(task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await serve(
                app,
                hypercorn_config(settings, bind="127.0.0.1:0"),
                trigger=stop.wait,
                task_status=task_status,
            )
        finally:
            stopped.set()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(runner)
        http_url = binds[0]
        server = RunningServer(
            http_url=http_url,
            ws_url=http_url.replace("http://", "ws://"),
            services=services_of(app),
            stop=stop,
            stopped=stopped,
        )
        try:
            yield server
        finally:
            stop.set()
            with trio.move_on_after(30):
                await stopped.wait()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with run_server(settings) as running:
        yield running


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "trio"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL cluster for the whole test session (see tests/postgres.py)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's cluster, for one test."""
    if not postgres_server.running:
        postgres_server.start()
    return postgres_server.create_database()
