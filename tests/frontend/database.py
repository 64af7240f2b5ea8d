"""The front end's database for tests: a fresh PostgreSQL database with the contract's tables."""

from __future__ import annotations

from pathlib import Path

import psycopg

CONTRACT_SQL = Path(__file__).with_name("contract.sql")
SEEDED_TEMPLATE_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def load_contract(url: str) -> None:
    """Create the contract's tables (and the seeded example template) in the database at url."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CONTRACT_SQL.read_bytes())
