"""Schema migrations: a 1.0 SQLite file migrated in place, PostgreSQL migrated once under the
advisory lock even by two processes at once, and a schema newer than the code stopping
``hana-voice serve`` with one line and exit status 2."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import trio

from hana_voice.errors import StoreError
from hana_voice.results import OutboxWorker, ResultDatabase, ResultStore
from hana_voice.results.backend import open_backend
from hana_voice.results.handover import idempotency_key
from hana_voice.results.migrations import (
    POSTGRES_SCHEMA_VERSION,
    SCHEMA_VERSION,
    SQLITE_MIGRATIONS,
)
from hana_voice.settings import Settings
from tests.results.conftest import FAST, METADATA, TEMPLATE_ID, VOICE_SECRET, sid

REPO = Path(__file__).resolve().parents[2]
#: The call a 1.0 file left pending (1.0 named sessions with uuids too, in hex).
OLD = sid("old")


def _release_1_0_database(path: Path) -> None:
    """A file as 1.0 left it: its tables, no schema version, one call pending hand-over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in SQLITE_MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO calls VALUES (?, ?, 1, ?, 'completed', 1.0, 2.0, 1.0)",
        (OLD, TEMPLATE_ID, json.dumps(METADATA)),
    )
    conn.execute(
        "INSERT INTO answers VALUES (?, 'q1', 1, 'نعم', 0.9, 1.0, 'answered', 1.5)", (OLD,)
    )
    conn.execute(
        "INSERT INTO outbox (session_id, idempotency_key, state, created_at, next_attempt_at)"
        " VALUES (?, ?, 'pending', 2.0, 2.0)",
        (OLD, idempotency_key(OLD)),
    )
    conn.close()


async def test_a_release_1_0_file_is_migrated_and_its_backlog_delivered(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = tmp_path / "r.sqlite3"
    _release_1_0_database(path)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with trio.fail_after(10):
        async with ResultStore.open(path) as store:
            assert await trio.to_thread.run_sync(store.db.schema_version) == SCHEMA_VERSION
            worker = OutboxWorker(
                store,
                make_settings("http://front.invalid"),
                policy=FAST,
                transport=httpx.MockTransport(handler),
            )
            await worker.run_once()
            call = await store.get_call(OLD)
    assert call is not None
    assert (call["handover"], call["outcome"]) == (True, None)
    assert call["delivery"]["state"] == "delivered"
    [request] = seen
    assert request.headers["Idempotency-Key"] == idempotency_key(OLD)


def test_sqlite_opened_twice_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    first = ResultDatabase(path)
    first.start_call("s1", "tpl", 1, {}, now=1.0)
    first.close()
    second = ResultDatabase(path)
    assert second.schema_version() == SCHEMA_VERSION
    assert second.get_call("s1") is not None
    second.close()


def test_a_newer_sqlite_schema_stops_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    ResultDatabase(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as caught:
        ResultDatabase(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"schema version {SCHEMA_VERSION + 1}, newer" in message


def _pg_settings(url: str, tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path, database_url=url, database_timeout=2.0).with_overrides(
        **changes
    )


def _versions(url: str, schema: str = "hana_voice") -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT version FROM {schema}.schema_migrations ORDER BY version")
        return [int(row[0]) for row in rows]


def test_postgres_migrates_into_its_own_schema_once(postgres_url: str, tmp_path: Path) -> None:
    settings = _pg_settings(postgres_url, tmp_path, database_schema="voice_results")
    open_backend(settings).close()
    db = open_backend(settings)
    try:
        assert db.schema_version() == POSTGRES_SCHEMA_VERSION
    finally:
        db.close()
    assert _versions(postgres_url, "voice_results") == list(range(1, POSTGRES_SCHEMA_VERSION + 1))
    with psycopg.connect(postgres_url) as conn:
        public = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert public == (0,)


_MIGRATE = (
    "import sys; from hana_voice.results.backend import open_backend;"
    " from hana_voice.settings import Settings;"
    " open_backend(Settings.from_env()).close(); print('migrated')"
)


@pytest.mark.slow
def test_two_processes_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    """Both processes wait on the advisory lock (held here), then race for it."""
    env = {**os.environ, "DATABASE_URL": postgres_url, "DATA_DIR": str(tmp_path)}
    with psycopg.connect(postgres_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtext('hana_voice:migrate'))")
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        # Both are blocked behind the lock until both sessions are waiting on it.
        with psycopg.connect(postgres_url, autocommit=True) as watcher:
            for _ in range(300):
                row = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                if row is not None and row[0] == 2:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the two processes never waited on the migration lock")
        holder.rollback()
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    assert _versions(postgres_url) == list(range(1, POSTGRES_SCHEMA_VERSION + 1))


def test_a_newer_postgres_schema_stops_serve_with_one_line_and_status_2(
    postgres_url: str, tmp_path: Path
) -> None:
    open_backend(_pg_settings(postgres_url, tmp_path)).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "INSERT INTO hana_voice.schema_migrations (version) VALUES (%s)",
            (POSTGRES_SCHEMA_VERSION + 1,),
        )
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "DATA_DIR": str(tmp_path),
        "VOICE_SERVICE_SECRET": VOICE_SECRET,
        "SKIP_MODEL_LOADING": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hana_voice", "serve", "--port", "0"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"hana-voice: results database: the results database (PostgreSQL schema hana_voice)"
        f" has schema version {POSTGRES_SCHEMA_VERSION + 1}, newer than this release"
        f" understands ({POSTGRES_SCHEMA_VERSION}): upgrade hana-voice or point it at another"
        " database"
    ]
    assert "@" not in done.stderr  # no credentials from the URL
