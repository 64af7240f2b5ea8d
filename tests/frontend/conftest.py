"""Fixtures for the front-end tests: the contract's database with a hospital and a call
session, and the faithful receiver of the front end's routes serving it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import trio

from tests.frontend.database import SEEDED_TEMPLATE_ID, load_contract
from tests.frontend.receiver import FrontEnd

JWT_SECRET = "frontend-jwt-secret-0123456789-abcdefgh"
HOSPITAL_ID = "11111111-2222-3333-4444-555555555555"
PATIENT_ID = "99999999-8888-7777-6666-555555555555"
CAMPAIGN_ID = "cccccccc-0000-0000-0000-000000000001"
CALL_SESSION_ID = "dddddddd-0000-0000-0000-000000000001"
#: A call's context as the front end passes it: the seeded template and its own ids.
CALL_CONTEXT = {
    "template_id": SEEDED_TEMPLATE_ID,
    "patient_id": PATIENT_ID,
    "hospital_id": HOSPITAL_ID,
    "campaign_id": CAMPAIGN_ID,
    "call_session_id": CALL_SESSION_ID,
}


def front_end_settings(front_end: FrontEnd) -> dict[str, Any]:
    """Settings changes that point a test server at the front end's database and routes."""
    return {
        "templates_database_url": front_end.database_url,
        "templates_timeout": 2.0,
        "nextjs_api_url": front_end.url,
        "jwt_secret": JWT_SECRET,
    }


#: A template that exists but is not published.
DRAFT_TEMPLATE_ID = "bbbbbbbb-0000-0000-0000-000000000001"


def seed(url: str) -> None:
    """The contract's tables, one hospital, one call session and one unpublished template."""
    load_contract(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hospitals (id, name, name_ar) VALUES (%s, 'Test Hospital', 'مستشفى')",
            (HOSPITAL_ID,),
        )
        conn.execute(
            "INSERT INTO call_sessions (id, hospital_id) VALUES (%s, %s)",
            (CALL_SESSION_ID, HOSPITAL_ID),
        )
        conn.execute(
            "INSERT INTO template_versions (template_id, name, is_published, questions_json)"
            """ VALUES (%s, 'Draft', false, '[{"id": "q1", "text": "نص", "order": 1,"""
            """ "type": "open_text"}]')""",
            (DRAFT_TEMPLATE_ID,),
        )


@pytest.fixture
def front_end_db(postgres_url: str) -> str:
    seed(postgres_url)
    return postgres_url


@pytest.fixture
async def front_end(front_end_db: str, nursery: trio.Nursery) -> FrontEnd:
    receiver = FrontEnd(front_end_db, JWT_SECRET)
    with trio.fail_after(10):
        await receiver.serve(nursery)
    return receiver
