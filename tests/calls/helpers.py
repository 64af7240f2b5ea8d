"""Helpers shared by the call tests over a real server: waiting, streaming, encoding, checks."""

from __future__ import annotations

import contextlib
import io
import json
import time
from typing import Any

import numpy as np
import trio

from hana_voice.engines.fake import FakeSpeechToText
from tests.conftest import RunningServer
from tests.wsclient import Client

#: Caller audio is streamed in frames of this length, as a browser's microphone sends it.
FRAME_MS = 20


async def engines_ready(server: RunningServer) -> None:
    with trio.fail_after(10):
        await server.services.engines.loaded.wait()


async def wait_prompt(client: Client, timeout: float = 10) -> dict[str, Any]:
    """Read until a prompt has been fully sent; return its audio.start message."""
    start = await client.until("audio.start", timeout)
    end = await client.until("audio.end", timeout)
    assert end["id"] == start["id"]
    return start


async def stream(client: Client, pcm: bytes, rate: int, *, realtime: bool = True) -> None:
    """Send PCM in FRAME_MS frames, paced in real time unless told otherwise."""
    step = 2 * rate * FRAME_MS // 1000
    t0 = trio.current_time()
    for index, start in enumerate(range(0, len(pcm), step)):
        await client.send(pcm[start : start + step])
        if realtime:
            await trio.sleep_until(t0 + (index + 1) * FRAME_MS / 1000)


async def no_sessions_left(server: RunningServer, timeout: float = 10) -> None:
    """Wait until every session of the server has ended (the registry is empty)."""
    with trio.move_on_after(timeout):
        while server.services.registry.live:
            await trio.sleep(0.02)
    live = [
        (h.endpoint, round(time.monotonic() - h.started, 1), h.cancel_scope.cancel_called)
        for h in server.services.registry._live.values()
    ]
    if live:
        root = trio.lowlevel.current_root_task()
        tasks = _task_tree(root) if root is not None else ""
        raise AssertionError(f"sessions left (endpoint, age s, cancelled): {live}\n{tasks}")


def _task_tree(task: trio.lowlevel.Task, depth: int = 0) -> str:
    """Every task's name and where it waits, for the failure message of a leak."""
    ours = [
        f"{frame.f_code.co_name}:{frame.f_lineno}"
        for frame, _ in task.iter_await_frames()
        if "hana_voice" in frame.f_code.co_filename
    ]
    where = " > ".join(ours) or "-"
    lines = [f"{'  ' * depth}{task.name} @ {where}"]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            lines.append(_task_tree(child, depth + 1))
    return "\n".join(lines)


async def all_recognizers_closed(stt: FakeSpeechToText, timeout: float = 5) -> None:
    """Wait until every recogniser the fake engine created has been freed."""
    with trio.fail_after(timeout):
        while not all(r.closed for r in stt.recognizers):
            await trio.sleep(0.02)


async def healthy(server: RunningServer) -> None:
    """The server still answers /health."""
    with trio.fail_after(10):
        async with server.client() as http:
            response = await http.get("/health")
    assert response.status_code == 200, response.text


def webm_opus(pcm: bytes, rate: int) -> bytes:
    """Encode PCM s16le mono as WebM/Opus at 48 kHz, as a browser's MediaRecorder would."""
    import av
    import soxr

    samples = np.frombuffer(pcm, dtype=np.int16)
    if rate != 48000:
        samples = np.asarray(soxr.resample(samples, rate, 48000), dtype=np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        encoder = out.add_stream("libopus", rate=48000, layout="mono")
        assert isinstance(encoder, av.AudioStream)
        for start in range(0, len(samples), 960):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + 960], format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, start
            for packet in encoder.encode(frame):
                out.mux(packet)
        for packet in encoder.encode(None):
            out.mux(packet)
    return buffer.getvalue()


class Timeline:
    """Every frame a client receives, with its arrival time, read by a background task.

    Lets a test stream caller audio while the server talks, then check what came back and
    when. ``entries`` holds (time, frame); JSON text frames are parsed, binary kept as bytes.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.entries: list[tuple[float, dict[str, Any] | bytes]] = []
        self._changed = trio.Event()
        self.closed: tuple[int | None, str | None] | None = None

    async def run(self) -> None:
        from trio_websocket import ConnectionClosed

        try:
            while True:
                frame = await self.client.receive()
                item: dict[str, Any] | bytes = (
                    frame if isinstance(frame, bytes) else json.loads(frame)
                )
                self.entries.append((trio.current_time(), item))
                self._changed.set()
                self._changed = trio.Event()
        except ConnectionClosed as exc:
            reason = exc.reason
            self.closed = (None, None) if reason is None else (reason.code, reason.reason)
            self._changed.set()

    def messages(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.entries if isinstance(m, dict) and m.get("type") == kind]

    async def wait_for(
        self, kind: str, timeout: float = 10, *, after: int = -1, **fields: Any
    ) -> tuple[int, float, dict[str, Any]]:
        """The first message of type ``kind`` past index ``after`` with these field values:
        (index, time, message)."""
        with trio.fail_after(timeout):
            while True:
                for index, (at, item) in enumerate(self.entries):
                    if index <= after:
                        continue
                    if (
                        isinstance(item, dict)
                        and item.get("type") == kind
                        and all(item.get(k) == v for k, v in fields.items())
                    ):
                        return index, at, item
                if self.closed is not None:
                    raise AssertionError(f"closed {self.closed} before a {kind!r} message")
                await self._changed.wait()

    async def wait_closed(self, timeout: float = 10) -> tuple[int | None, str | None]:
        with trio.fail_after(timeout):
            while self.closed is None:
                await self._changed.wait()
        return self.closed

    def binary_between(self, first: int, last: int) -> list[bytes]:
        return [item for _, item in self.entries[first:last] if isinstance(item, bytes)]


async def receive(client: Client, timeout: float = 10) -> str | bytes:
    """The next frame, whatever its type, within ``timeout`` seconds."""
    with trio.fail_after(timeout):
        return await client.receive()


async def hang_up(client: Client, timeout: float = 10) -> None:
    """Close from the client side with the close handshake, still reading meanwhile.

    trio-websocket's reader blocks on a full message queue when nobody reads, and then never
    sees the server's close reply; a browser keeps reading, so the test does too.
    """
    from trio_websocket import ConnectionClosed

    async def drain() -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await client.receive()

    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await client.ws.aclose()
