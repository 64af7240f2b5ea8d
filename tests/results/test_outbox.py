"""OutboxWorker: retries, restart, give-up, rejection, idempotency and missing configuration."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import trio

from hana_voice.results import OutboxWorker, ResultStore
from hana_voice.results.handover import idempotency_key
from hana_voice.settings import Settings
from tests.results.conftest import FAST, JWT_SECRET, METADATA, TEMPLATE_ID, Backends, sid
from tests.results.receiver import Receiver


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _finished_call(store: ResultStore, session: str, answers: int = 2) -> None:
    await store.start_call(session, TEMPLATE_ID, 3, METADATA)
    for n in range(1, answers + 1):
        await store.record_answer(session, f"q{n}", n, f"جواب {n}", 0.8, 2.0)
    await store.finish_call(session, "completed", 42.0)


def _replying(*statuses: int, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    queue = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(queue.pop(0) if queue else 200, headers=headers, json={})

    return httpx.MockTransport(handler)


async def test_pending_row_survives_a_restart_and_is_delivered_once(
    backends: Backends,
    make_settings: Callable[..., Settings],
    receiver: Receiver,
    refused_url: str,
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(15):
        async with backends.open() as store:
            await _finished_call(store, sid("s1"))
            # The front end is down (connection refused), then answers 503.
            down = OutboxWorker(store, make_settings(refused_url), policy=FAST)
            await down.run_once()
            receiver.statuses = [503]
            failing = OutboxWorker(store, make_settings(receiver.url), policy=FAST)
            await trio.sleep(FAST.max_delay)
            await failing.run_once()
            call = await store.get_call(sid("s1"))
            assert call is not None
            assert call["delivery"]["state"] == "pending"
            assert (call["delivery"]["attempts"], call["delivery"]["last_status"]) == (2, 503)
        # The process restarts: a new store and worker on the same file.
        async with backends.open() as store:
            worker = OutboxWorker(store, make_settings(receiver.url), policy=FAST)
            scope = trio.CancelScope()

            async def run_worker() -> None:
                with scope:
                    await worker.run()

            nursery.start_soon(run_worker)
            await receiver.wait_delivered(1)
            await trio.sleep(FAST.poll_interval)  # a few more passes: nothing is sent again
            scope.cancel()
            call = await store.get_call(sid("s1"))
            backlog = await store.backlog()
    assert [r.status for r in receiver.received] == [503, 200]
    [delivered] = receiver.delivered
    assert delivered.idempotency_key == idempotency_key(sid("s1"))
    assert delivered.claims["role"] == "voice_service"
    assert delivered.claims["sub"] == "hana-voice"
    assert delivered.claims["exp"] - delivered.claims["iat"] == 5 * 60
    assert delivered.body == {
        "template_id": TEMPLATE_ID,
        "question_count": 3,
        "answers": [
            {
                "question_id": f"q{n}",
                "question_order": n,
                "response": f"جواب {n}",
                "confidence": 0.8,
                "response_time_seconds": 2.0,
            }
            for n in (1, 2)
        ],
        "metadata": {
            "session_id": sid("s1"),
            "patient_id": METADATA["patient_id"],
            "hospital_id": METADATA["hospital_id"],
            "campaign_id": METADATA["campaign_id"],
            "call_duration_seconds": 42,
            "outcome": "completed",
            "outcome_detail": None,
            "call_context": {"provider": "maqsam", "legs": [{"leg": 1}]},
            "idempotency_key": idempotency_key(sid("s1")),
        },
    }
    assert call is not None
    assert (call["delivery"]["state"], call["delivery"]["attempts"]) == ("delivered", 3)
    assert backlog["delivered"] == 1
    assert backlog["pending"] == 0


async def test_two_workers_on_one_database_deliver_each_call_once(
    backends: Backends, make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    receiver.delay = 0.02  # keep requests in flight so that the workers overlap
    sessions = [sid(f"s{n}") for n in range(8)]
    settings = make_settings(receiver.url)
    with trio.fail_after(15):
        async with backends.open() as a, backends.open(recover=False) as b:
            workers = [
                OutboxWorker(a, settings, policy=FAST),
                OutboxWorker(b, settings, policy=FAST),
            ]
            async with trio.open_nursery() as nursery:
                for worker in workers:
                    await nursery.start(worker.run)
                for n, session in enumerate(sessions):
                    await _finished_call(a if n % 2 == 0 else b, session, 1)
                await receiver.wait_delivered(len(sessions))
                await trio.sleep(FAST.poll_interval)
                nursery.cancel_scope.cancel()
            backlog = await a.backlog()
    keys = sorted(r.idempotency_key or "" for r in receiver.received)
    assert keys == sorted(idempotency_key(s) for s in sessions)
    assert backlog["delivered"] == len(sessions)


async def test_gives_up_after_the_configured_time_and_keeps_the_record(
    backends: Backends, make_settings: Callable[..., Settings]
) -> None:
    clock = FakeClock()
    settings = make_settings("http://front.invalid", outbox_give_up_seconds=100.0)
    with trio.fail_after(10):
        async with backends.open(clock=clock) as store:
            await _finished_call(store, sid("s1"))
            worker = OutboxWorker(
                store, settings, policy=FAST, transport=_replying(503, 503, 503), clock=clock
            )
            await worker.run_once()
            clock.now += 50
            await worker.run_once()
            call = await store.get_call(sid("s1"))
            assert call is not None
            assert (call["delivery"]["state"], call["delivery"]["attempts"]) == ("pending", 2)
            clock.now += 51
            await worker.run_once()
            call = await store.get_call(sid("s1"))
    assert call is not None
    assert call["delivery"]["state"] == "failed"
    assert call["delivery"]["last_error"] == "gave up after 3 attempts: HTTP 503"
    assert len(call["answers"]) == 2
    assert worker.backlog()["failed"] == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_a_rejected_payload_fails_at_once(
    backends: Backends, make_settings: Callable[..., Settings], status: int
) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await _finished_call(store, sid("s1"))
            worker = OutboxWorker(
                store,
                make_settings("http://front.invalid"),
                policy=FAST,
                transport=_replying(status),
            )
            await worker.run_once()
            call = await store.get_call(sid("s1"))
    assert call is not None
    delivery = call["delivery"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == (
        "failed",
        1,
        status,
    )


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_retryable_statuses_are_retried_honouring_retry_after(
    backends: Backends, make_settings: Callable[..., Settings], status: int
) -> None:
    clock = FakeClock()
    transport = _replying(status, headers={"Retry-After": "30"})
    with trio.fail_after(10):
        async with backends.open(clock=clock) as store:
            await _finished_call(store, sid("s1"))
            worker = OutboxWorker(
                store, make_settings("http://front.invalid"), transport=transport, clock=clock
            )
            wait = await worker.run_once()
            call = await store.get_call(sid("s1"))
    assert call is not None
    assert call["delivery"]["state"] == "pending"
    assert call["delivery"]["next_attempt_at"] >= clock.now + 30
    assert 30 <= wait <= 60


async def test_unconfigured_front_end_parks_rows_and_a_configured_worker_delivers(
    backends: Backends,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[dict[str, Any]] = []
    both = trio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(jwt.decode(token, JWT_SECRET, ["HS256"]))
        if len(seen) == 2:
            both.set()
        return httpx.Response(201, json={})

    caplog.set_level(logging.WARNING, "hana_voice.results")
    with trio.fail_after(10):
        async with backends.open() as store:
            await _finished_call(store, sid("s1"))
            idle = OutboxWorker(store, make_settings(None), policy=FAST)
            await idle.run_once()
            await _finished_call(store, sid("s2"))
            await idle.run_once()
            assert idle.backlog()["pending_config"] == 2
            warnings = [r for r in caplog.records if "pending_config" in r.getMessage()]
            assert len(warnings) == 1
            worker = OutboxWorker(
                store,
                make_settings("http://front.invalid"),
                policy=FAST,
                transport=httpx.MockTransport(handler),
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.run)
                await both.wait()
                nursery.cancel_scope.cancel()
            backlog = await store.backlog()
    assert backlog["delivered"] == 2
    assert all(claims["role"] == "voice_service" for claims in seen)


async def test_a_finished_call_wakes_the_worker(
    backends: Backends, make_settings: Callable[..., Settings]
) -> None:
    posted = trio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        posted.set()
        return httpx.Response(200, json={})

    async def never(seconds: float) -> None:
        await trio.sleep_forever()  # only the finished-call event can wake the worker

    with trio.fail_after(10):
        async with backends.open() as store:
            worker = OutboxWorker(
                store,
                make_settings("http://front.invalid"),
                policy=FAST,
                transport=httpx.MockTransport(handler),
                sleep=never,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.run)
                await _finished_call(store, sid("s1"))
                await posted.wait()
                nursery.cancel_scope.cancel()


async def test_an_unsendable_row_is_flagged_and_the_worker_carries_on(
    backends: Backends, make_settings: Callable[..., Settings]
) -> None:
    with trio.fail_after(10):
        async with backends.open() as store:
            await _finished_call(store, sid("bad"))
            await _finished_call(store, sid("good"))
            # As if another version had written metadata of another shape.
            await trio.to_thread.run_sync(
                backends.execute,
                f"UPDATE calls SET metadata = '[1, 2]' WHERE session_id = '{sid('bad')}'",
            )
            worker = OutboxWorker(
                store, make_settings("http://front.invalid"), policy=FAST, transport=_replying()
            )
            await worker.run_once()
            bad = await store.get_call(sid("bad"))
            good = await store.get_call(sid("good"))
    assert bad is not None
    assert good is not None
    assert bad["delivery"]["state"] == "failed"
    assert bad["delivery"]["last_error"] == "unsendable row (AttributeError)"
    assert good["delivery"]["state"] == "delivered"
