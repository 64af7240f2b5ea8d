"""WebSocket ping/pong keep-alive for the utility sockets (/ws/echo, /ws/tts).

The front end's voice-tester page opens /ws/echo and /ws/tts when it loads and keeps them
quiet for minutes between uses, so those sockets must not end on IDLE_TIMEOUT. They are kept
instead with WebSocket pings: every WS_PING_INTERVAL seconds the server pings, and a peer that
has not answered a ping by the time the next one is due is taken as gone: the server closes
with 1011 "keep-alive ping timeout" and the call ends as on a disconnect. Calls keep
IDLE_TIMEOUT (a phone line that goes silent must end).

Neither ASGI nor Quart has a ping API. Hypercorn's ``websocket_ping_interval`` sends pings (on
HTTP/1.1 and HTTP/2 alike) but never checks for the pong, and it pings every socket. So
:func:`install_keepalive` sets that interval and replaces the ping task of Hypercorn 0.18's
``WSStream`` with one that pings only the paths chosen and closes on a missing pong; pongs are
seen by wrapping the stream's wsproto event iterator, so no Hypercorn code is copied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from hypercorn.config import Config

from hana_voice.settings import Settings

#: The sockets kept by pings instead of the idle timeout.
KEEPALIVE_PATHS = frozenset({"/ws/echo", "/ws/tts"})
#: Close code and reason for a peer that stopped answering pings (as the websockets library).
PING_TIMEOUT_CODE = 1011
PING_TIMEOUT_REASON = "keep-alive ping timeout"
_ATTRIBUTE = "hana_ping_paths"
#: How soon the ping task notices that its connection closed (seconds).
_STEP = 0.5


def keepalive_enabled(settings: Settings, path: str) -> bool:
    """Whether ``path`` is kept by pings (so the idle timeout does not apply to it).

    Only when the pinging is installed (a server started from ``hypercorn_config``): under any
    other server the idle timeout stays, so a dead peer still ends.
    """
    return settings.ws_ping_interval > 0 and path in KEEPALIVE_PATHS and _installed()


def _installed() -> bool:
    from hypercorn.protocol.ws_stream import WSStream

    return bool(getattr(WSStream._send_pings, "hana_keepalive", False))


def install_keepalive(config: Config, settings: Settings) -> None:
    """Ping the keep-alive paths every WS_PING_INTERVAL seconds (0 turns pings off)."""
    if settings.ws_ping_interval <= 0:
        return
    config.websocket_ping_interval = settings.ws_ping_interval
    setattr(config, _ATTRIBUTE, KEEPALIVE_PATHS)
    _patch_ws_stream()


def _patch_ws_stream() -> None:
    from hypercorn.protocol.events import StreamClosed
    from hypercorn.protocol.ws_stream import WSStream
    from wsproto.events import CloseConnection, Ping, Pong

    if _installed():
        return

    async def _send_pings(self: Any) -> None:
        paths = getattr(self.config, _ATTRIBUTE, None)
        if paths is None or self.scope.get("path") not in paths:
            return
        last_pong = [time.monotonic()]
        events = self.connection.events

        def seen_events() -> Iterator[Any]:
            for event in events():
                if isinstance(event, Pong):
                    last_pong[0] = time.monotonic()
                yield event

        self.connection.events = seen_events
        interval = self.config.websocket_ping_interval
        while not self.closed:
            sent_at = time.monotonic()
            await self._send_wsproto_event(Ping(payload=b"hana"))
            # In short steps: the connection's task group waits for this task when the peer
            # goes, so one long sleep would hold a closed connection (and shutdown) for up to
            # a whole interval.
            while not self.closed and time.monotonic() - sent_at < interval:
                await self.context.sleep(min(_STEP, interval - (time.monotonic() - sent_at)))
            if self.closed:
                return
            if last_pong[0] < sent_at:
                await self._send_wsproto_event(
                    CloseConnection(code=PING_TIMEOUT_CODE, reason=PING_TIMEOUT_REASON)
                )
                # As on a peer's close: the app hears websocket.disconnect, the TCP closes.
                await self.send(StreamClosed(stream_id=self.stream_id))
                return

    _send_pings.hana_keepalive = True  # type: ignore[attr-defined]  # marks the patch applied
    WSStream._send_pings = _send_pings  # type: ignore[method-assign]  # no upstream pong check
