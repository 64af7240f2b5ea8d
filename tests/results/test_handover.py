"""The hand-over's pure parts: stripping, payload, token, outcome and backoff."""

from __future__ import annotations

import random

import jwt
import pytest

from hana_voice.results.handover import (
    build_payload,
    idempotency_key,
    make_token,
    strip_phone_numbers,
    submit_url,
)
from hana_voice.results.outbox import RetryPolicy, classify


def test_strip_removes_phone_keys_at_any_depth() -> None:
    value = {
        "caller_number": "1",
        "callee": "2",
        "nested": {"caller": "3", "keep": [{"callee_number": "4", "x": 5}]},
    }
    assert strip_phone_numbers(value) == {"nested": {"keep": [{"x": 5}]}}


def test_token_claims() -> None:
    token = make_token("s" * 32, 7, now=1_700_000_000.5)
    claims = jwt.decode(token, "s" * 32, ["HS256"], options={"verify_exp": False})
    assert claims == {
        "sub": "hana-voice",
        "role": "voice_service",
        "iat": 1_700_000_000,
        "exp": 1_700_000_000 + 7 * 60,
    }


def test_payload_of_a_call_without_context() -> None:
    call = {
        "session_id": "s1",
        "template_id": "tpl",
        "question_count": 1,
        "status": "completed",
        "call_duration_seconds": None,
        "metadata": {"patient_id": "p", "extra": "not sent"},
        "answers": [],
    }
    assert build_payload(call, idempotency_key("s1"))["metadata"] == {
        "session_id": "s1",
        "patient_id": "p",
        "hospital_id": None,
        "campaign_id": None,
        "call_duration_seconds": 0,
        "outcome": "completed",
        "outcome_detail": None,
        "call_context": {},
        "idempotency_key": "hana-voice:s1",
    }


def test_submit_url() -> None:
    assert submit_url("https://hana.example/") == "https://hana.example/api/responses/submit"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (400, "rejected"),
        (403, "rejected"),
        (409, "rejected"),
        (422, "rejected"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (302, "retry"),
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (30, 10.0)]:
        delays = [policy.delay(attempts, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
