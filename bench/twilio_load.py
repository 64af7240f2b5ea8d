"""A Twilio-style load generator: N callers on media streams, in real time, against any server.

Each caller does what Twilio does to a ``<Connect><Stream>`` server: ``connected`` and
``start`` (custom parameters choosing the keypad questionnaire), then 20 ms base64 mu-law
``media`` frames of quiet line noise every 20 ms of wall time until the call ends. It "plays"
what the server sends: a playback clock advances by each ``media`` payload's duration, a
``clear`` drops what was buffered, a ``mark`` is echoed once the audio before it has played.
Once a prompt has played out (its mark echoed, or, for servers that send no marks, 0.3 s of
no new audio past the end of playback) the caller presses the prompt's key, as a person
answering the keypad questionnaire would; after the last prompt it hangs up if the server has
not. A caller whose call ends dials again until the window closes.

Lateness of a prompt: the worst amount by which one of its chunks arrived after the audio
before it had finished playing (> 0 is an audible gap). Only trio from the service's
environment is needed; the server under test may be any process.

The WebSocket client is a minimal one written here (:class:`RawWs`): the handshake, unfragmented
text frames, a zero mask (any mask key is valid; a zero one needs no XOR) and close. A general
client (trio-websocket masks every byte in Python) made the generator, not the servers, the
bottleneck on two shared cores.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import os
import statistics
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trio

RATE = 8000
FRAME = 0.02
#: The keypad questionnaire's answers, in prompt order: greeting (consent), four questions.
KEYS = ("1", "1", "2", "1#", "1")
#: Quiet time after playback before a caller without marks takes the prompt as finished.
GAP = 0.3
STREAM_SID = "MZ00000000000000000000000000000001"


def _noise_payloads() -> list[str]:
    """One second of -60 dBFS line noise as 50 base64 mu-law payloads (precomputed: the
    generator's CPU must go to the sockets, not to encoding)."""
    from hana_voice.audio import mulaw

    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(RATE) * 32768 * 10 ** (-60 / 20)).astype(np.int16)
    ulaw = mulaw.encode(samples.tobytes())
    step = int(RATE * FRAME)
    return [base64.b64encode(ulaw[i : i + step]).decode() for i in range(0, RATE, step)]


NOISE = _noise_payloads()


class ConnectionClosed(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


class RawWs:
    """A WebSocket client connection: text frames only, as media streams use."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.close_code: int | None = None
        self.closed = False
        self.send_lock = trio.Lock()  # the line, mark echoes and key presses share the socket

    @classmethod
    async def connect(cls, url: str) -> RawWs:
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        stream = await trio.open_tcp_stream(host, int(port or 80))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await stream.send_all(request.encode())
        ws = cls(stream)
        while b"\r\n\r\n" not in ws.buffer:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionClosed(None)
            ws.buffer += data
        head, _, rest = bytes(ws.buffer).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            await stream.aclose()
            raise ConnectionClosed(None)
        ws.buffer = bytearray(rest)
        return ws

    @staticmethod
    def frame(text: str, opcode: int = 0x1) -> bytes:
        data = text.encode()
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        return head + b"\0\0\0\0" + data  # zero mask key: the payload goes as it is

    async def send_message(self, text: str) -> None:
        if self.closed:
            raise ConnectionClosed(self.close_code)
        try:
            async with self.send_lock:
                await self.stream.send_all(self.frame(text))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.closed = True
            raise ConnectionClosed(self.close_code) from None

    async def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                self.closed = True
                raise ConnectionClosed(self.close_code)
            self.buffer += data

    async def get_message(self) -> str | bytes:
        while True:
            await self._fill(2)
            opcode, n = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            start = 2
            if n == 126:
                await self._fill(4)
                n, start = struct.unpack_from("!H", self.buffer, 2)[0], 4
            elif n == 127:
                await self._fill(10)
                n, start = struct.unpack_from("!Q", self.buffer, 2)[0], 10
            await self._fill(start + n)
            payload = bytes(self.buffer[start : start + n])
            del self.buffer[: start + n]
            if opcode == 0x8:  # close
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                await self.aclose()
                raise ConnectionClosed(self.close_code)
            if opcode == 0x9:  # ping
                with contextlib.suppress(ConnectionClosed):
                    await self.send_message_raw(0xA, payload)
                continue
            if opcode in (0x1, 0x2):
                return payload.decode() if opcode == 0x1 else payload

    async def send_message_raw(self, opcode: int, payload: bytes) -> None:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload))
        async with self.send_lock:
            await self.stream.send_all(head + b"\0\0\0\0" + payload)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                with trio.move_on_after(1):
                    await self.send_message_raw(0x8, struct.pack("!H", 1000))
        await self.stream.aclose()


@dataclass
class Prompt:
    first_at: float
    played: float = 0.0
    lateness: float = 0.0
    chunks: int = 0


@dataclass
class Stats:
    prompts: list[Prompt] = field(default_factory=list)
    call_seconds: float = 0.0
    calls: int = 0
    failed: int = 0
    frames_sent: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)

    def lateness(self) -> tuple[float, float, float]:
        """p50, p99 and max of per-prompt lateness, in seconds."""
        late = sorted(p.lateness for p in self.prompts if p.chunks) or [0.0]
        p99 = late[min(len(late) - 1, math.ceil(0.99 * len(late)) - 1)]
        return statistics.median(late), p99, late[-1]


class Caller:
    def __init__(self, ws: Any, nursery: trio.Nursery, stats: Stats, n: int) -> None:
        self.ws = ws
        self.nursery = nursery
        self.stats = stats
        self.n = n
        self.seq = itertools.count(1)
        self.play_end = 0.0
        self.current: Prompt | None = None
        self.heard = 0
        self.last_audio = 0.0
        self.done = trio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        message["sequenceNumber"] = str(next(self.seq))
        await self.ws.send_message(json.dumps(message))

    async def start(self) -> None:
        await self.ws.send_message(json.dumps({"event": "connected", "protocol": "Call"}))
        start = {
            "accountSid": "AC0",
            "streamSid": STREAM_SID,
            "callSid": f"CA{self.n:032d}",
            "tracks": ["inbound"],
            "customParameters": {"questionnaire_id": "telephony_keypad_check"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
        }
        await self.send({"event": "start", "start": start, "streamSid": STREAM_SID})

    async def stream_line(self) -> None:
        t0 = trio.current_time()
        # The frame text is built by hand: json.dumps per frame would dominate the generator.
        head = '{"event":"media","streamSid":"' + STREAM_SID + '","sequenceNumber":"'
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            for k in itertools.count(1):
                payload = NOISE[k % len(NOISE)]
                await self.ws.send_message(
                    f'{head}{k}","media":{{"track":"inbound","chunk":"{k}",'
                    f'"timestamp":"{k * 20}","payload":"{payload}"}}}}'
                )
                self.stats.frames_sent += 1
                await trio.sleep_until(t0 + k * FRAME)

    async def read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await self.ws.get_message()
                if isinstance(frame, bytes):
                    continue
                now = trio.current_time()
                message = json.loads(frame)
                kind = message.get("event")
                if kind == "media":
                    self._audio(now, len(message["media"]["payload"]) * 3 // 4 / RATE)
                elif kind == "mark":
                    self._prompt_done(now, message["mark"]["name"])
                elif kind == "clear":
                    self.current, self.play_end = None, now
        self.done.set()

    def _audio(self, now: float, seconds: float) -> None:
        prompt = self.current
        if prompt is None:
            prompt = self.current = Prompt(first_at=now)
            self.stats.prompts.append(prompt)
        prompt.lateness = max(prompt.lateness, (now - prompt.first_at) - prompt.played)
        prompt.played += seconds
        prompt.chunks += 1
        self.play_end = max(self.play_end, now) + seconds
        self.last_audio = now

    def _prompt_done(self, now: float, mark: str | None) -> None:
        self.current = None
        self.nursery.start_soon(self._answer, max(self.play_end, now), mark)

    async def watch_gaps(self) -> None:
        """For servers that send no marks: a prompt ends with GAP of silence after playback."""
        while True:
            await trio.sleep(0.05)
            now = trio.current_time()
            if self.current is not None and now > max(self.play_end, self.last_audio) + GAP:
                self._prompt_done(now, None)

    async def _answer(self, played_at: float, mark: str | None) -> None:
        await trio.sleep_until(played_at)
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            if mark is not None:
                await self.send({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": mark}})
                await trio.sleep(GAP)
            index = self.heard
            self.heard += 1
            if index < len(KEYS):
                for digit in KEYS[index]:
                    await self.send(
                        {"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"digit": digit}}
                    )
            else:
                self.done.set()  # the closing prompt played: the caller hangs up


async def one_call(url: str, n: int, stats: Stats, marks: bool) -> None:
    started = trio.current_time()
    try:
        ws = await RawWs.connect(url)
    except (OSError, ConnectionClosed) as exc:
        stats.failed += 1
        stats.close_codes[type(exc).__name__] = stats.close_codes.get(type(exc).__name__, 0) + 1
        return
    try:
        stats.calls += 1
        async with trio.open_nursery() as nursery:
            caller = Caller(ws, nursery, stats, n)
            await caller.start()
            nursery.start_soon(caller.read)
            nursery.start_soon(caller.stream_line)
            if not marks:
                nursery.start_soon(caller.watch_gaps)
            await caller.done.wait()
            nursery.cancel_scope.cancel()
        code = ws.close_code if ws.close_code is not None else "caller hung up"
        stats.close_codes[str(code)] = stats.close_codes.get(str(code), 0) + 1
    finally:
        stats.call_seconds += trio.current_time() - started
        with trio.CancelScope(shield=True):
            await ws.aclose()


async def run_level(url: str, calls: int, window: float, *, marks: bool) -> Stats:
    """``calls`` callers for ``window`` seconds (each redials when its call ends)."""
    stats = Stats()
    serial = itertools.count()

    async def caller_loop(slot: int) -> None:
        await trio.sleep(slot * 0.7 / max(calls, 1))  # spread the starts over 0.7 s
        while True:
            await one_call(url, next(serial), stats, marks)

    with trio.move_on_after(window):
        async with trio.open_nursery() as nursery:
            for slot in range(calls):
                nursery.start_soon(caller_loop, slot)
    return stats
