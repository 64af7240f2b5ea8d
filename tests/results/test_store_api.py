"""The store's extensions other parts rely on: no hand-over for anonymous calls, outcomes,
delivery kinds, skipped answers, failing a claimed delivery at once, schema migrations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from quart_trio import QuartTrio

from hana_voice.errors import StoreError
from hana_voice.results import OutboxWorker, ResultDatabase, ResultStore, calls_blueprint
from hana_voice.results.deliveries import DELIVERIES
from hana_voice.results.handover import idempotency_key
from hana_voice.results.migrations import SCHEMA_VERSION, SQLITE_MIGRATIONS
from hana_voice.results.tables import MAX_ERROR_CHARS
from hana_voice.settings import Settings
from tests.results.conftest import FAST, METADATA, VOICE_SECRET

FRONT = "http://front.invalid"


def _recording() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True})

    return httpx.MockTransport(handler), seen


async def test_an_anonymous_call_is_stored_but_never_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with trio.fail_after(10):
        async with ResultStore.open(path) as store:
            await store.start_call("anon", "tpl", 2, METADATA, handover=False)
            await store.record_answer("anon", "q1", 1, "نعم", 0.9, 1.0)
            await store.finish_call("anon", "completed", 5.0, deliveries=("results", "call_status"))
            await store.start_call("anon-dropped", "tpl", 2, {}, handover=False)
            call = await store.get_call("anon")
        # The second anonymous call was interrupted: recovery marks it, queues nothing.
        async with ResultStore.open(path) as store:
            dropped = await store.get_call("anon-dropped")
            backlog = await store.backlog()
    assert call is not None
    assert dropped is not None
    assert call["handover"] is False
    assert call["delivery"] == {"state": "not_handed_over"}
    assert call["deliveries"] == {}
    assert len(call["answers"]) == 1
    assert (dropped["status"], dropped["delivery"]) == (
        "incomplete",
        {"state": "not_handed_over"},
    )
    assert sum(backlog.values()) == 0


async def test_outcome_and_its_detail_are_stored_and_reach_the_payload_builders(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    detail = {"callback_at": "2026-12-02T18:00:00+03:00"}
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 2, METADATA)
            await store.finish_call(
                "s1", "stopped", 9.0, outcome="callback_requested", outcome_detail=detail
            )
            call = await store.get_call("s1")
            claim = await store.claim_delivery("w", 1e12, 30.0)
    assert call is not None
    assert claim is not None
    assert call["handover"] is True
    assert (call["outcome"], call["outcome_detail"]) == ("callback_requested", detail)
    assert (claim.call["outcome"], claim.call["outcome_detail"]) == ("callback_requested", detail)
    assert claim.kind == "results"


async def test_a_call_without_outcome_reads_none(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 1, {})
            await store.finish_call("s1", "completed")
            call = await store.get_call("s1")
    assert call is not None
    assert (call["outcome"], call["outcome_detail"]) == (None, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"outcome": "Call Back!"}, "bad call outcome"),
        ({"outcome_detail": {"when": object()}}, "not JSON"),
        ({"deliveries": ("results", "fax")}, "unknown delivery kind"),
    ],
    ids=["outcome", "detail", "kind"],
)
async def test_malformed_finishes_are_misuse(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 1, {})
            with pytest.raises(ValueError, match=message):
                await store.finish_call("s1", "completed", **changes)
            assert store.unwritten == 0
            call = await store.get_call("s1")
    assert call is not None
    assert call["status"] == "in_progress"


async def test_each_delivery_kind_is_its_own_row_and_request(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    transport, seen = _recording()
    metadata = {**METADATA, "call_context": {"call_session_id": "cs-1"}}
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 1, metadata)
            await store.record_answer("s1", "q1", 1, "نعم", 0.9, 1.0)
            await store.finish_call("s1", "completed", 41.6, deliveries=("results", "call_status"))
            queued = await store.get_call("s1")
            worker = OutboxWorker(store, make_settings(FRONT), policy=FAST, transport=transport)
            await worker.run_once()
            call = await store.get_call("s1")
    assert queued is not None
    assert sorted(queued["deliveries"]) == ["call_status", "results"]
    assert queued["delivery"]["state"] == "pending"
    by_path = {request.url.path: request for request in seen}
    assert sorted(by_path) == ["/api/responses/submit", "/api/telephony/call-status"]
    billing = by_path["/api/telephony/call-status"]
    assert json.loads(billing.content) == {
        "call_session_id": "cs-1",
        "status": "completed",
        "duration": 42,
    }
    assert billing.headers["Idempotency-Key"] == idempotency_key("s1") + ":call_status"
    assert "Authorization" not in billing.headers
    submit = by_path["/api/responses/submit"]
    assert submit.headers["Idempotency-Key"] == idempotency_key("s1")
    assert submit.headers["Authorization"].startswith("Bearer ")
    assert call is not None
    assert {kind: row["state"] for kind, row in call["deliveries"].items()} == {
        "results": "delivered",
        "call_status": "delivered",
    }


async def test_a_row_of_an_unknown_kind_is_failed_and_the_worker_carries_on(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    transport, seen = _recording()
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 1, {})
            await store.finish_call("s1", "completed")
            await trio.to_thread.run_sync(
                store.db._conn.execute, "UPDATE outbox SET kind = 'fax' WHERE session_id = 's1'"
            )
            await store.start_call("s2", "tpl", 1, {})
            await store.finish_call("s2", "completed")
            worker = OutboxWorker(store, make_settings(FRONT), policy=FAST, transport=transport)
            await worker.run_once()
            s1 = await store.get_call("s1")
            s2 = await store.get_call("s2")
    assert s1 is not None
    assert s2 is not None
    assert s1["deliveries"]["fax"]["state"] == "failed"
    assert s1["deliveries"]["fax"]["last_error"] == "unknown delivery kind 'fax'"
    assert s2["delivery"]["state"] == "delivered"
    assert len(seen) == 1


async def test_skipped_and_unanswered_questions_are_stored_but_not_sent(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    transport, seen = _recording()
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 3, METADATA)
            await store.record_answer("s1", "q1", 1, "نعم", 0.9, 1.0)
            await store.record_answer("s1", "q2", 2, "", 0.0, None, "skipped")
            await store.record_answer("s1", "q3", 3, "", 0.0, 8.0, "unanswered")
            await store.finish_call("s1", "completed")
            worker = OutboxWorker(store, make_settings(FRONT), policy=FAST, transport=transport)
            await worker.run_once()
            call = await store.get_call("s1")
    assert call is not None
    assert [(a["question_id"], a["status"]) for a in call["answers"]] == [
        ("q1", "answered"),
        ("q2", "skipped"),
        ("q3", "unanswered"),
    ]
    [request] = seen
    assert [a["question_id"] for a in json.loads(request.content)["answers"]] == ["q1"]


async def test_a_claimed_delivery_can_be_failed_at_once_with_a_reason(tmp_path: Path) -> None:
    reason = "Template not found or not published " + "x" * 600
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 1, {})
            await store.finish_call("s1", "completed")
            claim = await store.claim_delivery("w", 1e12, 30.0)
            assert claim is not None
            assert await store.settle(claim, "w", "failed", 1e12, error=reason)
            # Settled: the claim is gone, a second settle changes nothing.
            assert not await store.settle(claim, "w", "pending", 1e12, next_attempt_at=0.0)
            assert await store.claim_delivery("w", 2e12, 30.0) is None
            call = await store.get_call("s1")
    assert call is not None
    delivery = call["delivery"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("failed", 1, None)
    assert delivery["last_error"] == reason[:MAX_ERROR_CHARS]


async def test_get_call_route_shows_handover_outcome_and_deliveries(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("anon", "tpl", 1, {}, handover=False)
            await store.finish_call("anon", "completed", outcome="completed")
            app = QuartTrio(__name__)
            app.register_blueprint(calls_blueprint(lambda: store, make_settings()))
            response = await app.test_client().get(
                "/calls/anon", headers={"Authorization": f"Bearer {VOICE_SECRET}"}
            )
            body = await response.get_json()
    assert response.status_code == 200
    assert (body["handover"], body["outcome"], body["delivery"]) == (
        False,
        "completed",
        {"state": "not_handed_over"},
    )


def test_every_kind_is_registered_under_its_name() -> None:
    assert {"results", "call_status"} <= set(DELIVERIES)
    assert all(kind == delivery.kind for kind, delivery in DELIVERIES.items())


# --- migrations ---------------------------------------------------------------------------


def _release_1_0_database(path: Path) -> None:
    """A file as 1.0 left it: its tables, no schema version, one call pending hand-over."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in SQLITE_MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO calls VALUES ('old', 'tpl', 1, '{}', 'completed', 1.0, 2.0, 1.0)")
    conn.execute("INSERT INTO answers VALUES ('old', 'q1', 1, 'نعم', 0.9, 1.0, 'answered', 1.5)")
    conn.execute(
        "INSERT INTO outbox (session_id, idempotency_key, state, created_at, next_attempt_at)"
        " VALUES ('old', ?, 'pending', 2.0, 2.0)",
        (idempotency_key("old"),),
    )
    conn.close()


async def test_a_release_1_0_database_is_migrated_and_its_backlog_delivered(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = tmp_path / "r.sqlite3"
    _release_1_0_database(path)
    transport, seen = _recording()
    with trio.fail_after(10):
        async with ResultStore.open(path) as store:
            assert await trio.to_thread.run_sync(store.db.schema_version) == SCHEMA_VERSION
            worker = OutboxWorker(store, make_settings(FRONT), policy=FAST, transport=transport)
            await worker.run_once()
            call = await store.get_call("old")
    assert call is not None
    assert (call["handover"], call["outcome"]) == (True, None)
    assert call["delivery"]["state"] == "delivered"
    [request] = seen
    assert request.headers["Idempotency-Key"] == idempotency_key("old")


def test_opening_twice_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    first = ResultDatabase(path)
    first.start_call("s1", "tpl", 1, {}, now=1.0)
    first.close()
    second = ResultDatabase(path)
    assert second.schema_version() == SCHEMA_VERSION
    assert second.get_call("s1") is not None
    second.close()


def test_a_newer_schema_stops_with_one_clear_line(tmp_path: Path) -> None:
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
