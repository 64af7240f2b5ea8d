"""Malformed WebSocket frames are answered with a close frame (issue 11: they dropped the TCP
connection without one, so a client could not tell a protocol error from a network fault).

wsproto reports a malformed frame (bad UTF-8 in a text frame, reserved bits, an unmasked
client frame, a bad close code...) as a ``CloseConnection`` event carrying the RFC 6455 code
(1007 for bad payload data, 1002 for other protocol errors), but leaves its connection OPEN.
Hypercorn 0.18 then only answers a *received* close frame (state REMOTE_CLOSING) and drops the
connection otherwise. :func:`install` patches ``WSStream._handle_events`` so that in that case
the close frame goes out first, with wsproto's code and a short reason (ours, not the
client's data). Everything else is Hypercorn's code unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install"]

_REASONS = {1002: "protocol error: malformed frame", 1007: "invalid frame payload data"}


def install() -> None:
    from hypercorn.protocol.events import StreamClosed
    from hypercorn.protocol.ws_stream import FrameTooLargeError, WSStream
    from wsproto.connection import ConnectionState
    from wsproto.events import CloseConnection, Message, Ping
    from wsproto.frame_protocol import CloseReason

    if getattr(WSStream._handle_events, "hana_guarded", False):
        return

    async def _handle_events(self: Any) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    await self._send_wsproto_event(
                        CloseConnection(code=CloseReason.MESSAGE_TOO_BIG)
                    )
                    break
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                elif self.connection.state == ConnectionState.OPEN:
                    # A malformed frame (wsproto's ParseFailed): say so before closing.
                    code = int(event.code)
                    reason = _REASONS.get(code, "protocol error")
                    await self._send_wsproto_event(CloseConnection(code=code, reason=reason))
                await self.send(StreamClosed(stream_id=self.stream_id))

    _handle_events.hana_guarded = True  # type: ignore[attr-defined]  # marks the patch applied
    WSStream._handle_events = _handle_events  # type: ignore[method-assign]  # no upstream fix
