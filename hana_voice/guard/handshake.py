"""Half-open handshakes are bounded in time and counted per address (issue 11: a client that
opened TCP connections and sent its HTTP request slowly, or not at all, held each for ~75 s,
and none of them reached the rate limit, which sees only complete requests).

Hypercorn closes a connection that stays idle for ``keep_alive_timeout`` (75 s here, longer
than Railway's proxy keeps idle connections), and a partial request does not count as
activity. :func:`install` patches Hypercorn's trio ``TCPServer`` so that, for servers whose
config carries a :class:`HandshakeGuard`:

* a connection must complete its first request's headers (an HTTP request or a WebSocket
  upgrade) within HANDSHAKE_TIMEOUT seconds, else it is closed the way Hypercorn closes an
  idle one;
* at most MAX_HANDSHAKES_PER_ADDRESS connections per client address may be in that state at
  once; more are closed on accept, before any parsing. Behind a proxy
  (TRUST_FORWARDED_FOR) every connection comes from the proxy, so the per-address limit is
  off there and the proxy's own limits apply.

Connections that completed a request keep Hypercorn's keep-alive behaviour. A closed
connection also stops its idle timer, so its task ends at once instead of lingering 75 s.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

import trio

__all__ = ["HandshakeGuard", "install"]


@dataclass
class HandshakeGuard:
    timeout: float
    #: 0: no per-address limit.
    per_address: int
    open: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Connections parsing their first request at once. Only the parsing holds a token, never
    #: the wait for data, so slow clients cannot hold them; a burst of handshakes is worked
    #: off a few at a time, and requests on established connections (/health) interleave.
    work: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(4))
    timed_out: int = 0
    refused: int = 0

    def enter(self, address: str) -> bool:
        if self.per_address and self.open[address] >= self.per_address:
            self.refused += 1
            return False
        self.open[address] += 1
        return True

    def leave(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


def _peer(stream: Any) -> str:
    sock = getattr(stream, "socket", None) or getattr(
        getattr(stream, "transport_stream", None), "socket", None
    )
    try:
        return str(sock.getpeername()[0]) if sock is not None else "unknown"
    except OSError:
        return "unknown"


def install() -> None:
    from hypercorn.events import Closed, RawData, Updated
    from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

    if getattr(TCPServer.run, "hana_guarded", False):
        return
    original_run = TCPServer.run
    original_send = TCPServer.protocol_send
    original_read = TCPServer._read_data

    def first_request(self: Any) -> None:
        state = getattr(self, "_hana_handshake", None)
        if state is not None and state[1].deadline != math.inf:
            state[1].deadline = math.inf  # a request came: Hypercorn's own timeouts apply
            state[0].leave(state[2])

    async def run(self: Any) -> None:
        guard: HandshakeGuard | None = getattr(self.config, "hana_handshakes", None)
        if guard is None:
            await original_run(self)
            return
        address = _peer(self.stream)
        if not guard.enter(address):
            await trio.aclose_forcefully(self.stream)
            return
        # A deadline on Hypercorn's own connection task, lifted by the first request: no
        # extra task per connection (that would make every refusal in a burst dearer).
        scope = trio.CancelScope(deadline=trio.current_time() + guard.timeout)
        self._hana_handshake = (guard, scope, address)
        try:
            with scope:
                await original_run(self)
        finally:
            first_request(self)  # leaves the count once, whichever way the connection ended
        if scope.cancelled_caught:
            guard.timed_out += 1
            await trio.aclose_forcefully(self.stream)

    async def protocol_send(self: Any, event: Any) -> None:
        if isinstance(event, Updated) and not event.idle:
            first_request(self)
        await original_send(self, event)

    async def read_data(self: Any) -> None:
        state = getattr(self, "_hana_handshake", None)
        if state is None:
            await original_read(self)
            return
        guard, scope = state[0], state[1]
        try:
            # Hypercorn's _read_data, with the handshake's parsing taking turns (guard.work).
            while True:
                try:
                    with trio.fail_after(self.config.read_timeout or math.inf):
                        data = await self.stream.receive_some(MAX_RECV)
                except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError):
                    break
                if scope.deadline != math.inf:
                    async with guard.work:
                        await self.protocol.handle(RawData(bytes(data)))
                else:
                    await self.protocol.handle(RawData(bytes(data)))
                if data == b"":
                    break
            await self.protocol.handle(Closed())
        finally:
            first_request(self)
            # The peer has gone: Hypercorn would keep the connection's task waiting for its
            # idle timer (75 s); there is nothing left to time out.
            with trio.CancelScope(shield=True):
                await self.idle_task.stop()

    run.hana_guarded = True  # type: ignore[attr-defined]  # marks the patch as applied
    TCPServer.run = run  # type: ignore[method-assign]  # no upstream setting for this
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]  # see run
    TCPServer._read_data = read_data  # type: ignore[method-assign]  # see run
