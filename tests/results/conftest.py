"""Fixtures for the results tests: settings, a fast retry policy, the HTTP receiver, and
``backends``: the same test on SQLite and on a real PostgreSQL (tests/postgres.py)."""

from __future__ import annotations

import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.results.backend import Backend, open_backend
from hana_voice.results.outbox import RetryPolicy
from hana_voice.results.store import ResultStore
from hana_voice.settings import Settings
from tests.results.receiver import Receiver

JWT_SECRET = "test-jwt-secret-of-a-decent-length-0123"
VOICE_SECRET = "v" * 40

#: Retries within milliseconds so that a test sees several attempts in well under a second.
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, request_timeout=2.0, poll_interval=0.2)

#: The front end's seeded template (tests/frontend/contract.sql): results name its uuid.
TEMPLATE_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

#: The front end's ids are uuids: a result with other ids is refused before it is sent.
METADATA: dict[str, Any] = {
    "patient_id": "99999999-8888-7777-6666-555555555555",
    "hospital_id": "11111111-2222-3333-4444-555555555555",
    "campaign_id": "cccccccc-0000-0000-0000-000000000001",
    "caller_number": "+966500000001",
    "call_context": {
        "provider": "maqsam",
        "callee_number": "+966500000002",
        "caller": "+966500000003",
        "legs": [{"callee": "+966500000004", "leg": 1}],
    },
}


def sid(name: str) -> str:
    """A session id (a uuid, as the service names sessions) standing for ``name``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hana-voice-test:{name}"))


@pytest.fixture
def make_settings(tmp_path: Any) -> Callable[..., Settings]:
    def make(url: str | None = None, **changes: Any) -> Settings:
        base = Settings(
            data_dir=tmp_path,
            nextjs_api_url=url,
            jwt_secret=JWT_SECRET if url else None,
            voice_service_secret=VOICE_SECRET,
        )
        return base.with_overrides(**changes)

    return make


@pytest.fixture
async def receiver(nursery: trio.Nursery) -> Receiver:
    rx = Receiver(JWT_SECRET)
    await rx.serve(nursery)
    return rx


def closed_port_url() -> str:
    """A URL on a local port nothing listens on (the connection is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def refused_url() -> str:
    return closed_port_url()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding SQLite's exclusive lock on the database file."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@dataclass
class Backends:
    """One results database of either backend, opened as often as a test likes."""

    kind: str
    path: Path
    url: str | None

    def settings(self, **changes: Any) -> Settings:
        base = Settings(
            data_dir=self.path.parent,
            database_url=self.url,
            database_timeout=1.0,
            replica_id="test-replica",
            voice_service_secret=VOICE_SECRET,
        )
        return base.with_overrides(**changes)

    def open(
        self, settings: Settings | None = None, **options: Any
    ) -> AbstractAsyncContextManager[ResultStore]:
        """``ResultStore.open`` on this database; SQLite-only options are dropped for
        PostgreSQL."""
        if self.kind == "sqlite":
            return ResultStore.open(self.path, **options)
        pg_options = {k: v for k, v in options.items() if k in ("recover", "clock")}
        return ResultStore.open_settings(settings or self.settings(), **pg_options)

    def sync(self) -> Backend:
        return open_backend(self.settings())

    def execute(self, statement: str) -> None:
        """Run SQL on the database from outside the store (as another program would)."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute(statement)
            finally:
                conn.close()
            return
        import psycopg

        assert self.url is not None
        with psycopg.connect(self.url, autocommit=True) as pg:
            pg.execute("SET search_path TO hana_voice")
            pg.execute(statement.encode())


@pytest.fixture(params=["sqlite", "postgres"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Backends:
    path = Settings(data_dir=tmp_path / "data").database_path
    if request.param == "sqlite":
        return Backends("sqlite", path, None)
    url: str = request.getfixturevalue("postgres_url")
    return Backends("postgres", path, url)
