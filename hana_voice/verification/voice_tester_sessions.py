"""The client side of each streaming wire format, for the voice tester.

A :class:`Session` sets a call up, turns 20 ms PCM frames into the format's audio messages and
records what comes back through a :class:`Recorder`: one WAV file per reply utterance (an
utterance ends at the browser's ``audio.end``, or at a Maqsam/Twilio mark or barge-in) and
every JSON message in messages.jsonl, with audio payloads replaced by their size and
credentials redacted. Mark echoes and DTMF presses are answered from the receive loop.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from hana_voice.audio import mulaw
from hana_voice.audio.wav import write_wav


@dataclass
class Options:
    url: str
    endpoint: str | None = None
    wav: Path | None = None
    out: Path = Path("replies")
    mode: str = "auto"
    rate: int = 16000
    say: str | None = None
    token: str | None = None
    secret: str | None = None
    maqsam_token: str | None = None
    #: TWILIO_AUTH_TOKEN: sign the upgrade (X-Twilio-Signature) as Twilio does.
    twilio_auth_token: str | None = None
    dtmf: list[str] = field(default_factory=list)
    duration: float | None = None
    idle: float = 3.0
    speed: float = 1.0
    connect_seconds: float = 15.0


@dataclass
class Outcome:
    replies: list[Path] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    messages: int = 0
    close: tuple[int, str] | None = None


class Recorder:
    """Writes reply utterances as WAV files and every JSON message to messages.jsonl."""

    def __init__(self, out: Path, outcome: Outcome) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.outcome = outcome
        self.log: TextIO = (out / "messages.jsonl").open("w", encoding="utf-8")
        self.started = time.perf_counter()
        self.audio = bytearray()
        self.rate = 16000
        self.label: str | None = None

    def message(self, direction: str, message: dict[str, Any]) -> None:
        entry = {"t": round(time.perf_counter() - self.started, 3), "dir": direction}
        self.log.write(json.dumps({**entry, "message": message}, ensure_ascii=False) + "\n")
        self.log.flush()
        self.outcome.messages += 1
        if message.get("type") == "transcript" and message.get("final"):
            self.outcome.transcripts.append(str(message.get("text", "")))

    def begin(self, rate: int, label: str | None) -> None:
        self.finish(interrupted=False)
        self.rate, self.label = rate, label

    def add(self, pcm: bytes, rate: int) -> None:
        if not self.audio:
            self.rate = rate
        self.audio += pcm

    def finish(self, *, interrupted: bool) -> None:
        """Save the utterance gathered so far, if any."""
        if not self.audio:
            return
        path = self.out / f"reply-{len(self.outcome.replies) + 1:03d}.wav"
        path.write_bytes(write_wav(bytes(self.audio), self.rate))
        seconds = len(self.audio) / 2 / self.rate
        note = {"saved": path.name, "label": self.label, "seconds": round(seconds, 3)}
        self.message("note", {**note, "interrupted": interrupted})
        self.outcome.replies.append(path)
        self.audio.clear()
        self.label = None

    def close(self) -> None:
        self.finish(interrupted=False)
        self.log.close()


class Session:
    """One streaming call: the sender paces audio, the receiver records the replies."""

    rate = 8000

    def __init__(self, ws: WebSocketConnection, recorder: Recorder, options: Options) -> None:
        self.ws = ws
        self.recorder = recorder
        self.options = options
        self.dtmf = list(options.dtmf)
        self.ready = trio.Event()
        self.ended = trio.Event()
        self.last_heard = trio.current_time()

    async def send_json(self, message: dict[str, Any], logged: bool = True) -> None:
        if logged:
            shown = {k: ("<redacted>" if k == "apiKey" else v) for k, v in message.items()}
            self.recorder.message("out", shown)
        await self.ws.send_message(json.dumps(message, ensure_ascii=False))

    async def setup(self) -> None:
        raise NotImplementedError

    async def send_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    def press(self, digit: str) -> dict[str, Any]:
        raise NotImplementedError

    def on_text(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Record one message; return the messages to answer with (mark echoes, DTMF)."""
        raise NotImplementedError

    def prompt_done(self) -> list[dict[str, Any]]:
        """The key presses due after a prompt ended."""
        return [self.press(digit) for digit in self.dtmf.pop(0)] if self.dtmf else []

    async def receive(self) -> None:
        try:
            while True:
                frame = await self.ws.get_message()
                self.last_heard = trio.current_time()
                if isinstance(frame, bytes):
                    self.on_binary(frame)
                    continue
                try:
                    message = json.loads(frame)
                except ValueError:
                    message = {"text": frame}
                for reply in self.on_text(message if isinstance(message, dict) else {}):
                    await self.send_json(reply)
        except ConnectionClosed:
            pass  # run_tester reads the close code once the socket is closed
        self.ended.set()
        self.ready.set()  # wakes a set-up still waiting: the call is over

    def on_binary(self, frame: bytes) -> None:
        self.recorder.add(frame, self.rate)


class BrowserSession(Session):
    def __init__(self, ws: WebSocketConnection, recorder: Recorder, options: Options) -> None:
        super().__init__(ws, recorder, options)
        self.rate = options.rate

    async def setup(self) -> None:
        start = {"type": "start", "encoding": "pcm_s16le", "sample_rate": self.rate}
        await self.send_json({**start, "output_encoding": "pcm_s16le"})
        if self.options.say:
            await self.send_json({"type": "say", "text": self.options.say, "id": "tester"})
        self.ready.set()

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send_message(pcm)

    def press(self, digit: str) -> dict[str, Any]:
        return {"type": "dtmf", "digit": digit}

    def on_text(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        self.recorder.message("in", message)
        kind = message.get("type")
        if kind == "audio.start":
            self.recorder.begin(int(message.get("sample_rate", self.rate)), message.get("id"))
        elif kind == "audio.end":
            interrupted = bool(message.get("interrupted"))
            self.recorder.finish(interrupted=interrupted)
            return [] if interrupted else self.prompt_done()
        return []


class MaqsamSession(Session):
    async def setup(self) -> None:
        context = {"id": f"tester-{uuid.uuid4().hex[:8]}", "direction": "outbound", "custom": {}}
        setup: dict[str, Any] = {"type": "session.setup", "data": {"context": context}}
        await self.send_json(setup)
        with trio.fail_after(self.options.connect_seconds):
            await self.ready.wait()

    async def send_audio(self, pcm: bytes) -> None:
        payload = base64.b64encode(mulaw.encode(pcm)).decode()
        await self.send_json({"type": "audio.input", "data": {"audio": payload}}, logged=False)

    def press(self, digit: str) -> dict[str, Any]:
        return {"type": "call.dtmf", "data": {"digit": digit}}

    def on_text(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        kind = message.get("type")
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        if kind == "response.stream":
            audio = base64.b64decode(str(data.get("audio", "")))
            self.recorder.add(mulaw.decode(audio), 8000)
            message = {**message, "data": {"audio": {"bytes": len(audio)}}}
        self.recorder.message("in", message)
        if kind == "session.ready":
            self.ready.set()
        elif kind == "speech.started":
            self.recorder.finish(interrupted=True)
        elif kind == "call.mark":
            self.recorder.label = str(data.get("label"))
            self.recorder.finish(interrupted=False)
            # Echoed as Maqsam does once the audio before the mark has played.
            return [message, *self.prompt_done()]
        return []


class TwilioSession(MaqsamSession):
    def __init__(self, ws: WebSocketConnection, recorder: Recorder, options: Options) -> None:
        super().__init__(ws, recorder, options)
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.chunk = 0

    async def setup(self) -> None:
        await self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        start = {
            "streamSid": self.stream_sid,
            "callSid": "CA" + uuid.uuid4().hex,
            "tracks": ["inbound"],
            "mediaFormat": media_format,
            "customParameters": {},
        }
        await self.send_json({"event": "start", "streamSid": self.stream_sid, "start": start})
        self.ready.set()

    async def send_audio(self, pcm: bytes) -> None:
        self.chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(self.chunk * 20),
            "payload": base64.b64encode(mulaw.encode(pcm)).decode(),
        }
        message = {"event": "media", "streamSid": self.stream_sid, "media": media}
        await self.send_json(message, logged=False)

    def press(self, digit: str) -> dict[str, Any]:
        dtmf = {"track": "inbound_track", "digit": digit}
        return {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": dtmf}

    def on_text(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        kind = message.get("event")
        if kind == "media":
            media = message.get("media")
            media = media if isinstance(media, dict) else {}
            audio = base64.b64decode(str(media.get("payload", "")))
            self.recorder.add(mulaw.decode(audio), 8000)
            message = {**message, "media": {"payload": {"bytes": len(audio)}}}
        self.recorder.message("in", message)
        if kind == "clear":
            self.recorder.finish(interrupted=True)
        elif kind == "mark":
            mark = message.get("mark")
            self.recorder.label = str(mark.get("name")) if isinstance(mark, dict) else None
            self.recorder.finish(interrupted=False)
            return [message, *self.prompt_done()]
        return []


SESSIONS: dict[str, type[Session]] = {
    "browser": BrowserSession,
    "maqsam": MaqsamSession,
    "twilio": TwilioSession,
}
