"""A WebSocket test client over trio-websocket that always closes its own socket.

trio-websocket 0.12 may leave the TCP socket open when the *server* closes, which pytest
(warnings as errors) reports as a ResourceWarning; closing the stream ourselves avoids it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

MAX_MESSAGE = 32 * 1024 * 1024


class Client:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.binary: list[bytes] = []
        self.messages: list[dict[str, Any]] = []

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message, ensure_ascii=False))

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send_message(frame)

    async def receive(self) -> str | bytes:
        return await self.ws.get_message()

    async def next_json(self, timeout: float = 10) -> dict[str, Any]:
        """The next text message as JSON; binary frames met on the way are kept in .binary."""
        with trio.fail_after(timeout):
            while True:
                frame = await self.ws.get_message()
                if isinstance(frame, bytes):
                    self.binary.append(frame)
                    continue
                message: dict[str, Any] = json.loads(frame)
                self.messages.append(message)
                return message

    async def until(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """Read until a JSON message of type ``kind`` arrives."""
        with trio.fail_after(timeout):
            while True:
                message = await self.next_json(timeout)
                if message.get("type") == kind:
                    return message

    async def closed(self, timeout: float = 10) -> tuple[int | None, str | None]:
        """Read until the server closes; return its close code and reason."""
        with trio.fail_after(timeout):
            try:
                while True:
                    frame = await self.ws.get_message()
                    if isinstance(frame, bytes):
                        self.binary.append(frame)
                    else:
                        try:
                            self.messages.append(json.loads(frame))
                        except ValueError:
                            self.messages.append({"text": frame})
            except ConnectionClosed as exc:
                reason = exc.reason
                if reason is None:
                    return None, None
                return reason.code, reason.reason
        raise AssertionError("unreachable")


@asynccontextmanager
async def connect(url: str, headers: list[tuple[str, str]] | None = None) -> AsyncIterator[Client]:
    async with open_websocket_url(
        url,
        extra_headers=[(k.encode(), v.encode()) for k, v in headers or []],
        max_message_size=MAX_MESSAGE,
    ) as ws:
        try:
            yield Client(ws)
        finally:
            # Close the TCP stream ourselves (see the module docstring).
            await ws._stream.aclose()  # no public API closes it
