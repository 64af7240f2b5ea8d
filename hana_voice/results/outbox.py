"""The outbox worker: hands finished calls over to the Hana front end, durably.

Each finished call has one row per delivery kind in the ``outbox`` table, written in the
same transaction as its final status (database.py). :class:`OutboxWorker` runs in the app's
nursery, wakes when a call finishes (a ``trio.Event`` from the store) or on a timer, claims
due rows one at a time and POSTs each as its kind says (deliveries.py: ``results`` to
``{NEXTJS_API_URL}/api/responses/submit`` with the JWT, ``call_status`` to the billing
route). Outcomes:

* 2xx: ``delivered``, recorded in one transaction with the claim check.
* 4xx other than 408 and 429: ``failed`` at once with the status (the front end rejected
  this payload; sending it again cannot help). The call and answers are kept.
* 5xx, 408, 429, a network error or a timeout: back to ``pending`` with exponential backoff
  and jitter (a numeric ``Retry-After`` is honoured up to the cap), until
  ``OUTBOX_GIVE_UP_SECONDS`` have passed since the first attempt; then ``failed``.

A claim is a lease (``delivering`` until ``claim_expires_at``): concurrent workers never hold
the same row, and a row held by a process that died is taken again when its lease runs out.
A crash between a 2xx and the ``delivered`` commit sends the call again with the same
``Idempotency-Key`` (also in ``metadata.idempotency_key``) so the front end can drop it.

With NEXTJS_API_URL or JWT_SECRET unset, rows are parked as ``pending_config`` (one warning
per worker) and picked up by a worker started with the configuration.

Cancellation: cancelling :meth:`OutboxWorker.run` abandons the request in flight; its row
stays ``delivering`` until the lease ends, then is retried.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import trio

from hana_voice.errors import StoreError
from hana_voice.results.database import Claim
from hana_voice.results.deliveries import DELIVERIES
from hana_voice.results.store import ResultStore
from hana_voice.results.tables import DELIVERY_STATES
from hana_voice.settings import Settings

log = logging.getLogger("hana_voice.results.outbox")

Outcome = Literal["delivered", "rejected", "retry"]


def classify(status_code: int) -> Outcome:
    """What to do after the front end answered ``status_code``."""
    if 200 <= status_code < 300:
        return "delivered"
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return "rejected"
    return "retry"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """A numeric ``Retry-After`` header in seconds (the HTTP-date form is ignored)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """Timings of the outbox. Defaults suit production; tests shrink them."""

    base_delay: float = 2.0
    max_delay: float = 600.0
    request_timeout: float = 10.0
    poll_interval: float = 60.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Backoff after ``attempts`` failures: doubling, capped, between 50% and 100%."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        return ceiling * (0.5 + rng.random() / 2)

    @property
    def lease(self) -> float:
        # Longer than a request can last (httpx timeout per phase, trio deadline at 2x).
        return self.request_timeout * 3


class OutboxWorker:
    """Delivers queued calls; run it with ``await nursery.start(worker.run)``."""

    def __init__(
        self,
        store: ResultStore,
        settings: Settings,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        rng: random.Random | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.give_up_seconds = settings.outbox_give_up_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client: httpx.AsyncClient | None = None
        self._warned_unconfigured = False
        self._backlog = dict.fromkeys(DELIVERY_STATES, 0)

    @property
    def configured(self) -> bool:
        return self.settings.nextjs_api_url is not None and self.settings.jwt_secret is not None

    def backlog(self) -> dict[str, int]:
        """Outbox rows per delivery state, as of the worker's last pass (for /health)."""
        return dict(self._backlog)

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=httpx.Timeout(self.policy.request_timeout)
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver forever: a pass at start, then on each finished call or timer."""
        async with self._new_client() as client:
            self._client = client
            try:
                if self.configured:
                    await self._guarded(self.store.set_config_state(True))
                task_status.started()
                while True:
                    wake = self.store.finished_event
                    wait = await self.run_once()
                    await self._wait(wake, wait)
            finally:
                self._client = None

    async def _guarded(self, work: Awaitable[object]) -> None:
        try:
            await work
        except StoreError as exc:
            log.error("outbox: %s", exc)

    async def _wait(self, wake: trio.Event, seconds: float) -> None:
        async with trio.open_nursery() as nursery:

            async def timer() -> None:
                await self._sleep(seconds)
                nursery.cancel_scope.cancel()

            async def finished() -> None:
                await wake.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(timer)
            nursery.start_soon(finished)

    async def run_once(self) -> float:
        """One pass over due rows; return how long to wait before the next pass."""
        wait = self.policy.poll_interval
        try:
            if self.configured:
                # Only rows due when the pass began: one rescheduled during the pass waits
                # for the next one, so a pass tries each row at most once.
                started = self._clock()
                while (claim := await self._claim(started)) is not None:
                    await self._deliver(claim)
                due = await self.store.next_due_at()
                if due is not None:
                    wait = min(wait, max(0.0, due - self._clock()))
            else:
                parked = await self.store.set_config_state(False)
                if not self._warned_unconfigured:
                    self._warned_unconfigured = True
                    log.warning(
                        "NEXTJS_API_URL or JWT_SECRET is not set: results are kept and their"
                        " hand-over waits as pending_config (%d parked now)",
                        parked,
                    )
            self._backlog = await self.store.backlog()
        except StoreError as exc:
            log.error("outbox pass failed, trying again later: %s", exc)
            wait = min(wait, self.policy.base_delay)
        return wait

    async def _claim(self, due_by: float) -> Claim | None:
        now = self._clock()
        return await self.store.claim_delivery(self.worker_id, now, self.policy.lease, due_by)

    async def _post(self, claim: Claim) -> tuple[Outcome, int | None, str | None, float | None]:
        """POST one row as its kind's delivery builds it; return (outcome, status, error,
        retry-after)."""
        delivery = DELIVERIES.get(claim.kind)
        if delivery is None:
            # A kind written by another version: keep the row, flag it, carry on.
            return "rejected", None, f"unknown delivery kind {claim.kind!r}", None
        url = delivery.url(self.settings)
        if url is None:
            return "retry", None, f"{claim.kind} delivery is not configured", None
        try:
            body = delivery.body(claim.call, claim.idempotency_key)
            headers = delivery.headers(self.settings, claim.idempotency_key, self._clock())
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # A row written by hand or by another version: keep it, flag it, carry on.
            return "rejected", None, f"unsendable row ({type(exc).__name__})", None
        client = self._client
        try:
            with trio.fail_after(self.policy.request_timeout * 2):
                if client is None:
                    async with self._new_client() as temporary:
                        response = await temporary.post(url, json=body, headers=headers)
                else:
                    response = await client.post(url, json=body, headers=headers)
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            return "retry", None, type(exc).__name__, None
        outcome = classify(response.status_code)
        error = None if outcome == "delivered" else f"HTTP {response.status_code}"
        return outcome, response.status_code, error, retry_after_seconds(response)

    async def _deliver(self, claim: Claim) -> None:
        outcome, status, error, retry_after = await self._post(claim)
        now = self._clock()
        session = claim.session_id
        if outcome == "delivered":
            kept = await self.store.settle(
                claim, self.worker_id, "delivered", now, status_code=status, error=None
            )
            log.info("call %s handed over (attempt %d, HTTP %s)", session, claim.attempts, status)
        elif outcome == "rejected":
            kept = await self.store.settle(
                claim, self.worker_id, "failed", now, status_code=status, error=error
            )
            log.error(
                "call %s rejected by the front end (HTTP %s): kept as failed", session, status
            )
        elif now - claim.first_attempt_at >= self.give_up_seconds:
            reason = f"gave up after {claim.attempts} attempts: {error}"
            kept = await self.store.settle(
                claim, self.worker_id, "failed", now, status_code=status, error=reason
            )
            log.error("call %s: hand-over %s; kept as failed", session, reason)
        else:
            delay = self.policy.delay(claim.attempts, self._rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.policy.max_delay))
            kept = await self.store.settle(
                claim,
                self.worker_id,
                "pending",
                now,
                status_code=status,
                error=error,
                next_attempt_at=now + delay,
            )
            log.warning(
                "call %s: hand-over attempt %d failed (%s); retry in %.1f s",
                session,
                claim.attempts,
                error,
                delay,
            )
        if not kept:
            log.warning("call %s: delivery lease expired before its outcome was recorded", session)
