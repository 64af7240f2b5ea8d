"""Admission control for every WebSocket endpoint: the session registry and the rate limit.

The registry is the one list of live sessions in this process. Only authenticated sessions
count against MAX_CONCURRENT_SESSIONS: a connection that must still authenticate inside the
protocol (Maqsam before ``session.setup``, Twilio before ``start``) is registered *pending*,
limited per client address (MAX_PENDING_PER_ADDRESS) and given SETUP_TIMEOUT seconds, and is
promoted once its credentials pass; a session over the cap is told "server busy: N/N sessions"
(close 1013) then. On shutdown the registry asks every live session, pending or not, to end with
close 1001 once the grace period is over.

The rate limiter counts new connections (and HTTP requests) per client address in a sliding
one-minute window, in bounded memory.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_BUSY = 1013


class Refused(Exception):
    """A connection is refused before its session starts (busy, rate limit, draining)."""

    def __init__(self, close_code: int, reason: str, http_status: int = 503) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason
        self.http_status = http_status


@dataclass
class SessionHandle:
    """A live session's entry: its id, endpoint, and the scope that ends it on shutdown."""

    session_id: str
    endpoint: str
    kind: str
    started: float = field(default_factory=time.monotonic)
    #: The client address (pending connections are limited per address).
    address: str = "unknown"
    #: False until the session has authenticated; only admitted sessions count against the cap.
    admitted: bool = False
    #: Pending without a credential: counted in the per-address limit until promoted.
    limited: bool = False
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    #: Set when the server ends the session (shutdown): the close code and reason to send.
    end_code: int | None = None
    end_reason: str | None = None

    def end(self, code: int, reason: str) -> None:
        if self.end_code is None:
            self.end_code = code
            self.end_reason = reason
        self.cancel_scope.cancel()


class SessionRegistry:
    """Live sessions of this process, capped at ``capacity``."""

    def __init__(self, capacity: int, max_pending_per_address: int = 0) -> None:
        self.capacity = capacity
        self.max_pending_per_address = max_pending_per_address
        self._live: dict[str, SessionHandle] = {}
        self._admitted = 0
        self._pending_by_address: collections.Counter[str] = collections.Counter()
        self._draining = False
        self.total_admitted = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self._empty = trio.Event()
        self._empty.set()
        #: Worker processes (WORKERS > 1) share one service-wide cap: a cross-process
        #: semaphore with ``acquire(blocking)``/``release()`` (see hana_voice.workers).
        self.shared_slots: Any = None

    @property
    def active(self) -> int:
        """Authenticated sessions: what the cap counts."""
        return self._admitted

    @property
    def pending(self) -> int:
        """Connections still to authenticate (not counted against the cap)."""
        return len(self._live) - self._admitted

    @property
    def live(self) -> int:
        """Every registered connection, pending or admitted."""
        return len(self._live)

    @property
    def draining(self) -> bool:
        return self._draining

    def count_by_kind(self) -> Mapping[str, int]:
        return collections.Counter(h.kind for h in self._live.values() if h.admitted)

    def refuse(self, reason_key: str) -> None:
        self.refused[reason_key] += 1

    @contextmanager
    def admit(
        self,
        endpoint: str,
        kind: str,
        *,
        address: str = "unknown",
        pending: bool = False,
        credentialed: bool = False,
    ) -> Iterator[SessionHandle]:
        """Register a session for the duration of the block; raise Refused when full.

        ``pending``: the session has yet to authenticate (or set up); it is not counted
        against the cap and must be promoted (:meth:`promote`) once it has. Pending
        connections that showed no credential at the handshake (``credentialed``) are also
        limited per address.
        """
        if self._draining:
            self.refuse("draining")
            raise Refused(CLOSE_GOING_AWAY, "server restarting: try again shortly")
        # A canonical uuid: the front end stores it in a uuid column (call_session_id).
        handle = SessionHandle(
            session_id=str(uuid.uuid4()), endpoint=endpoint, kind=kind, address=address
        )
        if pending:
            limit = 0 if credentialed else self.max_pending_per_address
            if limit and self._pending_by_address[address] >= limit:
                self.refuse("pending_limit")
                raise Refused(
                    CLOSE_POLICY,
                    "too many connections waiting to authenticate from one address "
                    f"(limit {limit})",
                )
            if not credentialed:
                handle.limited = True
                self._pending_by_address[address] += 1
        else:
            self._take_slot(handle)
        self._live[handle.session_id] = handle
        self.total_admitted += 1
        self._empty = trio.Event() if self._empty.is_set() else self._empty
        try:
            yield handle
        finally:
            del self._live[handle.session_id]
            if handle.admitted:
                self._admitted -= 1
                if self.shared_slots is not None:
                    self.shared_slots.release()
            self._leave_pending(handle)
            if not self._live:
                self._empty.set()

    def promote(self, handle: SessionHandle) -> None:
        """A pending session has authenticated: count it against the cap, or raise Refused."""
        if handle.admitted:
            return
        self._take_slot(handle)
        self._leave_pending(handle)

    def _take_slot(self, handle: SessionHandle) -> None:
        if self._admitted >= self.capacity:
            self.refuse("busy")
            raise Refused(CLOSE_BUSY, f"server busy: {self._admitted}/{self.capacity} sessions")
        if self.shared_slots is not None and not self.shared_slots.acquire(False):
            self.refuse("busy")
            raise Refused(
                CLOSE_BUSY, f"server busy: {self.capacity}/{self.capacity} sessions (all workers)"
            )
        self._admitted += 1
        handle.admitted = True

    def _leave_pending(self, handle: SessionHandle) -> None:
        if not handle.limited:
            return
        handle.limited = False
        self._pending_by_address[handle.address] -= 1
        if self._pending_by_address[handle.address] <= 0:
            del self._pending_by_address[handle.address]

    def start_draining(self) -> None:
        """Refuse new sessions from now on."""
        self._draining = True

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for live sessions, then end the rest with 1001.

        Returns how many sessions had to be ended.
        """
        self.start_draining()
        with trio.move_on_after(grace):
            await self._empty.wait()
        leftover = list(self._live.values())
        for handle in leftover:
            handle.end(CLOSE_GOING_AWAY, "server restarting")
        with trio.move_on_after(5):
            await self._empty.wait()
        return len(leftover)


class RateLimiter:
    """At most ``per_minute`` events per key in any sliding 60 s window (0 = unlimited).

    Memory is bounded: at most ``max_keys`` addresses are tracked (the stalest are dropped)
    and each keeps at most ``per_minute`` timestamps.
    """

    WINDOW = 60.0

    def __init__(
        self,
        per_minute: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._clock = clock
        self._hits: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def check(self, key: str) -> float | None:
        """Record one event for ``key``; return None if allowed, else seconds to wait."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = collections.deque(maxlen=self.per_minute)
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and now - hits[0] >= self.WINDOW:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return max(0.0, self.WINDOW - (now - hits[0]))
        hits.append(now)
        return None


def client_address(remote_addr: str | None, forwarded_for: str | None, trust: bool) -> str:
    """The client's address for rate limiting.

    Behind Railway's proxy every connection comes from the proxy, so the address is taken
    from X-Forwarded-For, but only when configured to trust it (a client can send any
    header). The right-most entry is the one the trusted proxy appended itself.
    """
    if trust and forwarded_for:
        parts = [p.strip() for p in forwarded_for.split(",") if p.strip()]
        if parts:
            return parts[-1]
    return remote_addr or "unknown"
