"""The contract's tables load, and keep the front end's column types."""

from __future__ import annotations

import psycopg
import pytest

from tests.frontend.database import SEEDED_TEMPLATE_ID, load_contract


def test_seeded_template_is_published(postgres_url: str) -> None:
    load_contract(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT is_published, jsonb_array_length(questions_json) FROM template_versions"
            " WHERE template_id = %s",
            (SEEDED_TEMPLATE_ID,),
        ).fetchone()
    assert row == (True, 3)


def test_fractional_duration_is_refused_like_the_front_end(postgres_url: str) -> None:
    load_contract(postgres_url)
    with psycopg.connect(postgres_url) as conn, pytest.raises(psycopg.errors.DataError):
        conn.execute(
            "INSERT INTO template_responses (template_id, patient_id, response_time_seconds,"
            " answers_json, response_hash) VALUES (%s, gen_random_uuid(), %s::text::integer,"
            " '[]', 'h')",
            (SEEDED_TEMPLATE_ID, "12.5"),
        )
