"""ResultStore on both backends: durability, recovery, stripping and misuse; then SQLite's
own failures (locks, a full disk). PostgreSQL outages: test_outage.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hana_voice.errors import StoreError
from hana_voice.results import ResultDatabase, ResultStore
from tests.results.conftest import METADATA, Backends, exclusive_lock


async def _answer(store: ResultStore, session: str, n: int) -> bool:
    return await store.record_answer(session, f"q{n}", n, f"جواب {n}", 0.9, 1.5 + n)


async def test_answers_are_durable_as_they_are_recorded(backends: Backends) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("s1", "tpl", 3, METADATA)
            assert await _answer(store, "s1", 1)
            # Another connection sees the answer before the call ends: it was committed.
            other = await trio.to_thread.run_sync(backends.sync)
            call = await trio.to_thread.run_sync(other.get_call, "s1")
            await trio.to_thread.run_sync(other.close)
    assert call is not None
    assert call["status"] == "in_progress"
    assert [a["response"] for a in call["answers"]] == ["جواب 1"]


async def test_dropped_call_keeps_its_answers_and_is_queued_after_restart(
    backends: Backends,
) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("dropped", "tpl", 5, METADATA)
            await _answer(store, "dropped", 1)
            await _answer(store, "dropped", 2)
            # The process dies here: no finish_call.
        async with backends.open() as store:
            call = await store.get_call("dropped")
            backlog = await store.backlog()
    assert call is not None
    assert call["status"] == "incomplete"
    assert [a["question_id"] for a in call["answers"]] == ["q1", "q2"]
    assert call["call_duration_seconds"] >= 0
    assert call["delivery"]["state"] == "pending"
    assert backlog["pending"] == 1


async def test_a_dropped_call_is_recovered_with_the_deliveries_it_asked_for(
    backends: Backends,
) -> None:
    """A call that asked for its billing post at the start still gets it after a crash."""
    asked = {**METADATA, "call_session_id": "call-1", "deliveries": ["results", "call_status"]}
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("billed", "tpl", 2, asked)
            await _answer(store, "billed", 1)
            # The process dies here: no finish_call.
        async with backends.open() as store:
            call = await store.get_call("billed")
            backlog = await store.backlog()
    assert call is not None
    assert (call["status"], call["outcome"]) == ("incomplete", "failed")
    assert call["outcome_detail"] == {"reason": "process_lost"}
    assert backlog["pending"] == 2  # the results and the call-status post


async def test_phone_numbers_are_not_stored(backends: Backends) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("s1", "tpl", 1, METADATA)
            call = await store.get_call("s1")
    assert call is not None
    assert call["metadata"] == {
        "patient_id": METADATA["patient_id"],
        "hospital_id": METADATA["hospital_id"],
        "campaign_id": METADATA["campaign_id"],
        "call_context": {"provider": "maqsam", "legs": [{"leg": 1}]},
    }


async def test_a_repeated_question_keeps_its_latest_answer(backends: Backends) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("s1", "tpl", 1, {})
            await store.record_answer("s1", "q1", 1, "لا", 0.4, 2.0, "unclear")
            await store.record_answer("s1", "q1", 1, "نعم", 0.95, 1.0)
            call = await store.get_call("s1")
    assert call is not None
    [answer] = call["answers"]
    assert (answer["response"], answer["status"], answer["confidence"]) == ("نعم", "answered", 0.95)


async def test_finish_is_recorded_once(backends: Backends) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("s1", "tpl", 1, {})
            await store.finish_call("s1", "escalated", 12.5)
            await store.finish_call("s1", "incomplete", 99.0)
            call = await store.get_call("s1")
            backlog = await store.backlog()
    assert call is not None
    assert (call["status"], call["call_duration_seconds"]) == ("escalated", 12.5)
    assert backlog["pending"] == 1


async def test_misuse_raises_value_error(backends: Backends) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await store.start_call("s1", "tpl", 1, {})
            with pytest.raises(ValueError, match="unknown call status"):
                await store.finish_call("s1", "great")
            with pytest.raises(ValueError, match="never started"):
                await _answer(store, "nobody", 1)
            with pytest.raises(ValueError, match="already started"):
                await store.start_call("s1", "tpl", 1, {})
            assert store.unwritten == 0


# --- SQLite's own failures ---------------------------------------------------------------


def test_locked_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    db = ResultDatabase(path, busy_timeout=0.05, lock_retries=1)
    db.start_call("s1", "tpl", 1, {}, now=1.0)
    with exclusive_lock(path):
        with pytest.raises(StoreError, match="locked"):
            db.finish_call("s1", "completed", 1.0, now=2.0)
        # Reads still work in WAL mode, and the process carries on.
        call = db.get_call("s1")
        assert call is not None
        assert call["status"] == "in_progress"
    assert db.finish_call("s1", "completed", 1.0, now=3.0)
    db.close()


async def test_answer_written_while_locked_is_kept_and_written_at_the_end(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite3"
    with trio.fail_after(10):
        async with ResultStore.open(path, busy_timeout=0.05, lock_retries=0) as store:
            await store.start_call("s1", "tpl", 2, {})
            with exclusive_lock(path):
                assert not await _answer(store, "s1", 1)
                assert not await _answer(store, "s1", 2)
                assert store.unwritten == 2
                with pytest.raises(StoreError, match="locked"):
                    await store.finish_call("s1", "completed", 3.0)
            await store.finish_call("s1", "completed", 3.0)
            assert store.unwritten == 0
            call = await store.get_call("s1")
    assert call is not None
    assert call["status"] == "completed"
    assert [a["question_id"] for a in call["answers"]] == ["q1", "q2"]


async def test_writes_still_held_at_close_are_tried_once_more(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with trio.fail_after(10):
        store = await ResultStore.connect(path, busy_timeout=0.05, lock_retries=0)
        await store.start_call("s1", "tpl", 1, {})
        with exclusive_lock(path):
            assert not await _answer(store, "s1", 1)
        await store.aclose()
        async with ResultStore.open(path) as reopened:
            call = await reopened.get_call("s1")
    assert call is not None
    assert len(call["answers"]) == 1


async def test_full_disk_raises_store_error_and_the_store_lives(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with ResultStore.open(tmp_path / "r.sqlite3") as store:
            await store.start_call("s1", "tpl", 1, {})
            # No disk can be filled here; SQLite's own size cap yields the same SQLITE_FULL.
            assert isinstance(store.db, ResultDatabase)
            conn = store.db._conn
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
            big = "ن" * 200_000
            assert not await store.record_answer("s1", "q1", 1, big, 0.5, 1.0)
            with pytest.raises(StoreError, match="full"):
                await store.finish_call("s1", "completed")
            call = await store.get_call("s1")
            assert call is not None
            assert call["answers"] == []
            conn.execute("PRAGMA max_page_count = 1073741823")
            await store.finish_call("s1", "completed")
            call = await store.get_call("s1")
    assert call is not None
    assert len(call["answers"][0]["response"]) == 200_000


async def test_unopenable_database_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    with trio.fail_after(10), pytest.raises(StoreError, match="cannot open"):
        await ResultStore.connect(blocker / "r.sqlite3")


async def test_held_writes_survive_misuse_and_cancellation(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with trio.fail_after(10):
        async with ResultStore.open(path, busy_timeout=0.05, lock_retries=0) as store:
            await store.start_call("s1", "tpl", 2, {})
            with exclusive_lock(path):
                assert not await _answer(store, "s1", 1)
            with pytest.raises(ValueError, match="unknown call status"):
                await store.finish_call("s1", "great")
            with trio.CancelScope() as scope:
                scope.cancel()
                await _answer(store, "s1", 2)
            assert store.unwritten == 2
            await store.finish_call("s1", "stopped")
            call = await store.get_call("s1")
    assert call is not None
    assert [a["question_id"] for a in call["answers"]] == ["q1", "q2"]
