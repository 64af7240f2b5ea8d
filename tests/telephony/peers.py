"""Simulated telephony providers: the Maqsam side and the Twilio side of a call.

A peer does what the provider does to our server, over a real WebSocket:

- it streams the caller's line (base64 mu-law, 8 kHz, 20 ms frames) in real time, quiet line
  noise when the caller is silent, and speech queued with :meth:`Peer.say`, remembering when
  each speech onset went out (the audio timeline barge-in is measured against);
- it "plays" reply audio: a playback clock advances by each chunk's duration, a barge-in
  (``speech.started`` / ``clear``) drops what was buffered, and a mark is echoed once the audio
  before it has played, plus an optional delay chosen per label (``None``: never echo);
- it records every message with its arrival time, and each prompt's audio chunks.

The two subclasses differ only in the wire format, as the providers do.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from hana_voice.audio import mulaw
from tests.wsclient import connect

RATE = 8000
FRAME_SECONDS = 0.02
FRAME_BYTES = int(RATE * FRAME_SECONDS) * 2  # PCM s16le
#: Phone numbers a provider sends with every call; none may reach the results store.
CALLER_NUMBER = "+966500000001"
CALLEE_NUMBER = "+966511111111"

#: Decides, per mark label, the delay after playback before echoing it (None: never echo).
EchoPolicy = Callable[[str], float | None]
PeerT = TypeVar("PeerT", bound="Peer")


def echo_after(delay: float = 0.0) -> EchoPolicy:
    return lambda label: delay


def echo_unless(name: str) -> EchoPolicy:
    """Echo every mark at once except those of the prompt ``name``, which are never echoed."""
    return lambda label: None if prompt_name(label) == name else 0.0


def _line_noise_frames() -> list[bytes]:
    from tests.audio.signals import line_noise, to_pcm

    pcm = to_pcm(line_noise(1.0, RATE, -60))
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


@dataclass
class PromptAudio:
    """One prompt as the peer received it."""

    first_at: float
    #: (arrival time, seconds of audio) per response chunk.
    chunks: list[tuple[float, float]] = field(default_factory=list)
    label: str | None = None
    marked_at: float | None = None
    heard_at: float | None = None
    interrupted: bool = False
    #: Its mark was echoed because a clear discarded its audio (Twilio does that), not played.
    cleared: bool = False

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.chunks)

    @property
    def last_at(self) -> float:
        return self.chunks[-1][0] if self.chunks else self.first_at


class Peer:
    """The provider's side of one call. Use :func:`open_peer`."""

    wire: ClassVar[str] = ""
    #: Whether a barge-in (clear) makes the provider echo every mark still waiting, at once.
    echoes_marks_on_clear: ClassVar[bool] = False

    def __init__(self, ws: WebSocketConnection, nursery: trio.Nursery, echo: EchoPolicy) -> None:
        self.ws = ws
        self.nursery = nursery
        self.echo = echo
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.prompts: list[PromptAudio] = []
        self.barge_ins: list[float] = []
        self.speech_onsets: list[float] = []
        self.ready_count = 0
        self.ready = trio.Event()
        self.redirected_at: float | None = None
        self.hung_up_at: float | None = None
        self.binary_received = 0
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = trio.Event()
        self.frames_sent = 0
        self._current: PromptAudio | None = None
        self._play_end = 0.0
        self._speech = bytearray()
        self._onsets: list[int] = []  # byte offsets into the speech stream
        self._speech_sent = 0
        self._noise = itertools.cycle(_line_noise_frames())
        self._seq = itertools.count(1)
        self._heard_send, self.heard = trio.open_memory_channel[str](math.inf)
        self.call_sid = ""
        self.stream_ended_at: float | None = None
        #: After a redirect, close the socket after this delay, as Maqsam does (None: never).
        self.close_on_redirect: float | None = None
        self.closed_itself_at: float | None = None

    # ------------------------------------------------------------------ wire format

    def setup_messages(self, custom: Mapping[str, Any], **options: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def audio_message(self, ulaw: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def dtmf_message(self, digit: object) -> dict[str, Any]:
        raise NotImplementedError

    def mark_message(self, label: str) -> dict[str, Any]:
        raise NotImplementedError

    def classify(self, message: dict[str, Any]) -> tuple[str, Any]:
        """("ready" | "audio" | "barge_in" | "mark" | "redirect" | "hangup" | "other", value)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ sending

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        frame = message if isinstance(message, str | bytes) else json.dumps(message)
        await self.ws.send_message(frame)

    async def setup(self, custom: Mapping[str, Any] | None = None, **options: Any) -> None:
        for message in self.setup_messages(custom or {}, **options):
            await self.send(message)

    async def press(self, digits: str) -> None:
        for digit in digits:
            await self.send(self.dtmf_message(digit))

    async def send_pcm(self, pcm: bytes) -> None:
        await self.send(self.audio_message(mulaw.encode(pcm)))
        self.frames_sent += 1

    def say(self, pcm: bytes, onset_seconds: float) -> None:
        """Queue caller speech on the line; its voice starts ``onset_seconds`` into ``pcm``."""
        self._onsets.append(self._speech_sent + len(self._speech) + int(onset_seconds * RATE) * 2)
        self._speech += pcm

    async def flood(self, pcm: bytes) -> None:
        """Send ``pcm`` as 20 ms frames as fast as the socket takes them (a provider burst)."""
        for i in range(0, len(pcm), FRAME_BYTES):
            await self.send_pcm(pcm[i : i + FRAME_BYTES])

    async def stream_line(self) -> None:
        """The caller's line in real time: queued speech, else quiet line noise. Runs until the
        call closes (start it in the peer's nursery after set-up)."""
        start = trio.current_time()
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            for n in itertools.count(1):
                if self._speech:
                    frame = bytes(self._speech[:FRAME_BYTES])
                    del self._speech[:FRAME_BYTES]
                    frame += bytes(FRAME_BYTES - len(frame))
                    end = self._speech_sent + FRAME_BYTES
                    while self._onsets and self._onsets[0] < end:
                        self._onsets.pop(0)
                        self.speech_onsets.append(trio.current_time())
                    self._speech_sent = end
                else:
                    frame = next(self._noise)
                await self.send_pcm(frame)
                await trio.sleep_until(start + n * FRAME_SECONDS)

    async def hang_up(self) -> None:
        """The caller hangs up: the provider closes the socket."""
        await self.ws.aclose()

    # ------------------------------------------------------------------ receiving

    async def read(self) -> None:
        try:
            while True:
                frame = await self.ws.get_message()
                now = trio.current_time()
                if isinstance(frame, bytes):
                    self.binary_received += 1
                    continue
                message = json.loads(frame)
                self.received.append((now, message))
                await self._on_message(now, message)
        except ConnectionClosed as exc:
            if exc.reason is not None:
                self.close_code, self.close_reason = exc.reason.code, exc.reason.reason
        finally:
            self.closed.set()
            self._heard_send.close()

    async def _on_message(self, now: float, message: dict[str, Any]) -> None:
        kind, value = self.classify(message)
        if kind == "ready":
            self.ready_count += 1
            self.ready.set()
        elif kind == "audio":
            seconds = len(base64.b64decode(value)) / RATE
            if self._current is None:
                self._current = PromptAudio(first_at=now)
                self.prompts.append(self._current)
            self._current.chunks.append((now, seconds))
            self._play_end = max(self._play_end, now) + seconds
        elif kind == "barge_in":
            self.barge_ins.append(now)
            if self._current is not None:
                self._current.interrupted = True
                self._current = None
            self._play_end = now  # buffered audio is dropped, not played
            if self.echoes_marks_on_clear:
                for prompt in self.prompts:
                    if prompt.label is not None and prompt.heard_at is None and not prompt.cleared:
                        prompt.cleared = True
                        await self.send(self.mark_message(prompt.label))
        elif kind == "mark":
            prompt = self._current or PromptAudio(first_at=now)
            if self._current is None:
                self.prompts.append(prompt)
            self._current = None
            prompt.label, prompt.marked_at = value, now
            delay = self.echo(value)
            if delay is not None:
                self.nursery.start_soon(self._echo, prompt, max(self._play_end, now) + delay)
        elif kind == "redirect":
            self.redirected_at = now
            if self.close_on_redirect is not None:
                self.nursery.start_soon(self._take_over, self.close_on_redirect)
        elif kind == "hangup":
            self.hung_up_at = now

    async def _take_over(self, delay: float) -> None:
        """The provider transfers the call: it closes our socket itself (Maqsam does)."""
        await trio.sleep(delay)
        self.closed_itself_at = trio.current_time()
        await self.ws.aclose()

    async def _echo(self, prompt: PromptAudio, at: float) -> None:
        await trio.sleep_until(at)
        assert prompt.label is not None
        if prompt.cleared:
            return  # already echoed when a clear discarded it
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            await self.send(self.mark_message(prompt.label))
            prompt.heard_at = trio.current_time()
            with contextlib.suppress(trio.ClosedResourceError):
                self._heard_send.send_nowait(prompt.label)

    def types(self) -> list[str]:
        return [self.classify(message)[0] for _, message in self.received]

    def prompt(self, name: str) -> PromptAudio:
        """The last prompt whose mark label names ``name`` (see :func:`prompt_name`)."""
        for prompt in reversed(self.prompts):
            if prompt.label is not None and prompt_name(prompt.label) == name:
                return prompt
        raise KeyError(name)


class MaqsamPeer(Peer):
    wire = "maqsam"

    def setup_messages(
        self,
        custom: Mapping[str, Any],
        *,
        api_key: str | None = None,
        call_id: str = "maqsam-call-1",
        **extra: Any,
    ) -> list[dict[str, Any]]:
        context = {
            "id": call_id,
            "caller_number": CALLER_NUMBER,
            "callee_number": CALLEE_NUMBER,
            "caller": CALLER_NUMBER,
            "callee": CALLEE_NUMBER,
            "inputs": [],
            "direction": "outbound",
            "timestamp": "2025-04-07 10:00:00",
            "custom": dict(custom),
        }
        message: dict[str, Any] = {"type": "session.setup", "data": {"context": context}}
        if api_key is not None:
            message["apiKey"] = api_key
        return [message]

    def audio_message(self, ulaw: bytes) -> dict[str, Any]:
        return {"type": "audio.input", "data": {"audio": base64.b64encode(ulaw).decode()}}

    def dtmf_message(self, digit: object) -> dict[str, Any]:
        return {"type": "call.dtmf", "data": {"digit": digit}}

    def mark_message(self, label: str) -> dict[str, Any]:
        return {"type": "call.mark", "data": {"label": label}}

    def classify(self, message: dict[str, Any]) -> tuple[str, Any]:
        kind = message.get("type")
        if kind == "response.stream":
            return "audio", message["data"]["audio"]
        if kind == "call.mark":
            return "mark", message["data"]["label"]
        simple = {
            "session.ready": "ready",
            "speech.started": "barge_in",
            "call.redirect": "redirect",
            "call.hangup": "hangup",
        }
        return simple.get(str(kind), "other"), None


class TwilioPeer(Peer):
    """Twilio's side of a ``<Connect><Stream>``; ``token`` becomes ``<Parameter name="token">``.

    Like Twilio, a ``clear`` makes it echo at once every mark still waiting (their audio was
    discarded, not played), and :meth:`stop_and_close` ends the stream as Twilio does when the
    call leaves the ``<Stream>`` (a REST update).
    """

    wire = "twilio"
    echoes_marks_on_clear = True
    stream_sid = "MZ00000000000000000000000000000001"

    def setup_messages(
        self,
        custom: Mapping[str, Any],
        *,
        call_sid: str = "CA00000000000000000000000000000001",
        media_format: Mapping[str, Any] | None = None,
        token: str | None = None,
        **extra: Any,
    ) -> list[dict[str, Any]]:
        fmt = media_format or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        parameters = {"From": CALLER_NUMBER, "To": CALLEE_NUMBER, **custom}
        if token is not None:
            parameters["token"] = token
        self.call_sid = call_sid
        start = {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": self.stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": dict(fmt),
        }
        return [
            {"event": "connected", "protocol": "Call", "version": "1.0.0"},
            {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": self.stream_sid},
        ]

    def _base(self, event: str) -> dict[str, Any]:
        return {
            "event": event,
            "sequenceNumber": str(next(self._seq)),
            "streamSid": self.stream_sid,
        }

    def audio_message(self, ulaw: bytes) -> dict[str, Any]:
        payload = base64.b64encode(ulaw).decode()
        return {**self._base("media"), "media": {"track": "inbound", "payload": payload}}

    def dtmf_message(self, digit: object) -> dict[str, Any]:
        return {**self._base("dtmf"), "dtmf": {"track": "inbound_track", "digit": digit}}

    def mark_message(self, label: str) -> dict[str, Any]:
        return {**self._base("mark"), "mark": {"name": label}}

    def stop_message(self) -> dict[str, Any]:
        return {**self._base("stop"), "stop": {"callSid": self.call_sid}}

    async def stop_and_close(self) -> None:
        """The call left the ``<Stream>``: Twilio sends ``stop`` and closes the socket."""
        self.stream_ended_at = trio.current_time()
        with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
            await self.send(self.stop_message())
            await self.ws.aclose()

    def classify(self, message: dict[str, Any]) -> tuple[str, Any]:
        kind = message.get("event")
        if message.get("streamSid") != self.stream_sid:
            return "other", None  # every message we may act on names our stream
        if kind == "media":
            return "audio", message["media"]["payload"]
        if kind == "mark":
            return "mark", message["mark"]["name"]
        if kind == "clear":
            return "barge_in", None
        return "other", None


def twilio_signature(auth_token: str, url: str) -> list[tuple[str, str]]:
    """The ``X-Twilio-Signature`` header Twilio puts on the upgrade to ``url`` (a GET: no
    parameters), computed by Twilio's own helper library."""
    from twilio.request_validator import RequestValidator

    return [("X-Twilio-Signature", RequestValidator(auth_token).compute_signature(url, {}))]


@asynccontextmanager
async def open_peer(
    peer_type: type[PeerT],
    url: str,
    headers: list[tuple[str, str]] | None = None,
    *,
    echo: EchoPolicy | None = None,
) -> AsyncIterator[PeerT]:
    """Dial ``url`` as the provider; the peer reads (and echoes marks) in the background."""
    async with connect(url, headers) as client, trio.open_nursery() as nursery:
        peer = peer_type(client.ws, nursery, echo or echo_after(0.0))
        nursery.start_soon(peer.read)
        try:
            yield peer
        finally:
            nursery.cancel_scope.cancel()


def prompt_name(label: str) -> str:
    """The prompt a mark label names: "3:q:pain_level" -> "pain_level", "1:greeting" ->
    "greeting" (labels are the dialog's prompt ids, "<seq>:<name>")."""
    return label.split(":", 1)[-1].removeprefix("q:")


async def keypad_caller(peer: Peer, keys: Mapping[str, str]) -> None:
    """Once each prompt named in ``keys`` has been heard, press its digits; until the call ends."""
    async for label in peer.heard:
        digits = keys.get(prompt_name(label))
        if digits:
            with contextlib.suppress(ConnectionClosed):
                await peer.press(digits)
