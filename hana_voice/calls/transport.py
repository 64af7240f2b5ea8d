"""The WebSocket seam between a call session and the server.

The session speaks to a :class:`Transport`; production wraps Quart's websocket object, and
tests may pass any object of the same shape. Sends are serialised with a lock so frames from
the writer, the listener and the dialog never interleave mid-message.
"""

from __future__ import annotations

from typing import Protocol

import trio
from quart import Websocket

from hana_voice.errors import ProtocolError

Frame = str | bytes


class Transport(Protocol):
    async def receive(self) -> Frame: ...

    async def send(self, frame: Frame) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class QuartTransport:
    """Quart's websocket as a Transport. ``receive`` returns str for text, bytes for binary."""

    def __init__(self, websocket: Websocket, send_timeout: float = 10.0) -> None:
        self._ws = websocket
        self.send_timeout = send_timeout
        self._send_lock = trio.Lock()
        self.closed = False

    async def receive(self) -> Frame:
        frame: Frame | None = await self._ws.receive()
        if frame is None:
            # Quart reads a message as ``bytes or text``, so an empty binary frame (bytes b"",
            # text None) reaches us as None; the codecs expect the empty bytes it was.
            return b""
        return frame

    async def send(self, frame: Frame) -> None:
        # A deadline at the I/O edge: a peer that stops reading must not hold a call (and its
        # registry slot) forever once the TCP buffers are full.
        with trio.move_on_after(self.send_timeout) as scope:
            async with self._send_lock:
                await self._ws.send(frame)
        if scope.cancelled_caught:
            raise ProtocolError(
                f"client is not reading: a frame could not be sent in {self.send_timeout:g} s",
                code="client_not_reading",
                close_code=1008,
                fatal=True,
            )

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        # Close reasons are limited to 123 bytes by RFC 6455.
        encoded = reason.encode()[:123]
        await self._ws.close(code, encoded.decode(errors="ignore"))
