"""Half-open handshakes are bounded in time and counted per address (issue 11: they were held
~75 s and not counted by the rate limit)."""

from __future__ import annotations

import trio

from hana_voice.settings import Settings
from tests.conftest import RunningServer, run_server


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.http_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _until_closed(stream: trio.SocketStream, trickle: bytes = b"") -> float:
    """Trickle ``trickle`` a byte at a time until the server closes; seconds it took."""
    started = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def send() -> None:
            for byte in trickle:
                try:
                    await stream.send_all(bytes([byte]))
                except trio.BrokenResourceError:
                    return
                await trio.sleep(0.2)

        nursery.start_soon(send)
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        nursery.cancel_scope.cancel()
    return trio.current_time() - started


async def _response(stream: trio.SocketStream) -> bytes:
    """One whole HTTP response (headers and a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += await stream.receive_some(65536)
    return data


async def test_a_slow_handshake_is_closed_after_the_timeout(settings: Settings) -> None:
    settings = settings.with_overrides(handshake_timeout=1.0)
    request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    async with run_server(settings) as server:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream(*_address(server))
            async with stream:
                waited = await _until_closed(stream, request * 10)
            silent = await trio.open_tcp_stream(*_address(server))
            async with silent:
                waited_silent = await _until_closed(silent)
    assert 0.8 < waited < 3, waited
    assert 0.8 < waited_silent < 3, waited_silent


async def test_keep_alive_after_a_complete_request_is_not_cut(settings: Settings) -> None:
    settings = settings.with_overrides(handshake_timeout=0.5)
    async with run_server(settings) as server:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream(*_address(server))
            async with stream:
                for _ in range(2):
                    await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert (await _response(stream)).startswith(b"HTTP/1.1 200")
                    await trio.sleep(1.0)


async def test_half_open_connections_are_limited_per_address(settings: Settings) -> None:
    settings = settings.with_overrides(handshake_timeout=10.0, max_handshakes_per_address=3)
    async with run_server(settings) as server:
        with trio.fail_after(10):
            held = [await trio.open_tcp_stream(*_address(server)) for _ in range(3)]
            await trio.sleep(0.2)
            extra = await trio.open_tcp_stream(*_address(server))
            async with extra:
                waited = await _until_closed(extra)
            assert waited < 1.0
            for stream in held:
                await stream.aclose()
            await trio.sleep(0.3)
            # Once they are gone, the address may connect again.
            async with server.client() as http:
                assert (await http.get("/health")).status_code == 200
