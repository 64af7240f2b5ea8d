"""The PostgreSQL harness itself: a private cluster starts, serves, stops and starts again."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres import PostgresServer


def test_fresh_database_accepts_queries(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT 1 + 1").fetchone()
    assert row == (2,)


def test_server_can_be_taken_away_and_brought_back(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    postgres_server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    postgres_server.start()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 'back'").fetchone() == ("back",)
