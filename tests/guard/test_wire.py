"""Malformed WebSocket frames get a close frame with 1002/1007, not a dropped connection."""

from __future__ import annotations

import struct

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request

from hana_voice.settings import Settings
from tests.conftest import run_server


def _frame(first: int, payload: bytes, *, masked: bool = True) -> bytes:
    mask = b"\x01\x02\x03\x04"
    length = len(payload)
    header = bytes([first])
    if length < 126:
        header += bytes([(0x80 if masked else 0) | length])
    else:
        header += bytes([(0x80 if masked else 0) | 126]) + struct.pack("!H", length)
    if not masked:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


MALFORMED = {
    "bad-utf8": (_frame(0x81, b"\xff\xfe\xfd"), 1007),
    "reserved-bits": (_frame(0xC1, b"hi"), 1002),
    "unmasked": (_frame(0x81, b"hi", masked=False), 1002),
    "unknown-opcode": (_frame(0x83, b"hi"), 1002),
    "bad-close-code": (_frame(0x88, struct.pack("!H", 999)), 1002),
}


async def _send_raw(host: str, port: int, path: str, frame: bytes) -> CloseConnection | None:
    client = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(client.send(Request(host=host, target=path)))
        accepted = False
        while not accepted:
            data = await stream.receive_some(65536)
            assert data, "server closed during the handshake"
            client.receive_data(data)
            accepted = any(isinstance(e, AcceptConnection) for e in client.events())
        await stream.send_all(frame)
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return None  # dropped without a close frame
            client.receive_data(data)
            for event in client.events():
                if isinstance(event, CloseConnection):
                    return event


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_frame_gets_a_close_frame(settings: Settings, name: str) -> None:
    frame, code = MALFORMED[name]
    async with run_server(settings) as server:
        host, port = server.http_url.removeprefix("http://").rsplit(":", 1)
        with trio.fail_after(10):
            close = await _send_raw(host, int(port), "/ws", frame)
        assert close is not None, "the connection was dropped without a close frame"
        assert close.code == code
        async with server.client() as http:
            assert (await http.get("/health")).status_code == 200
