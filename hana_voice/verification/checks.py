"""The checks of a deployment verification, each a coroutine returning one :class:`Check`.

Each check times its own I/O and judges the result against the deployment guide's targets;
none raises for a network or protocol problem (that is a failed check, not a crash), but
trio.Cancelled always propagates. Credentials travel only in headers and never reach a
check's detail text. The WebSocket helper :func:`open_ws` is shared with the voice tester.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import numpy as np
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from hana_voice.audio.pcm import float32_to_pcm16, silence
from hana_voice.audio.resample import resample
from hana_voice.audio.wav import read_wav, write_wav
from hana_voice.errors import AudioError

Status = Literal["passed", "warning", "degraded", "skipped", "failed"]

#: The deployment guide's targets, in seconds.
HEALTH_TARGET = 5.0
CONNECT_TARGET = 2.0
VOICE_TARGET = 10.0

WS_PATHS = (
    "/ws",
    "/ws/healthcare-questionnaire",
    "/ws/secure",
    "/ws/secure/healthcare",
    "/ws/echo",
    "/ws/tts",
    "/ws/maqsam",
    "/ws/maqsam/healthcare",
    "/ws/maqsam/test",
    "/ws/telephony",
    "/ws/telephony/healthcare",
)
MAX_MESSAGE = 32 * 1024 * 1024
#: How long a connect check waits after the handshake for an immediate refusal.
SETTLE_SECONDS = 0.5
ECHO_RATE = 16000
_HEALTH_STATUS: dict[str, Status] = {
    "healthy": "passed",
    "degraded": "degraded",
    "loading": "warning",
}
_ENGINE_STATUS: dict[str, Status] = {"loaded": "passed", "loading": "warning", "skipped": "skipped"}
#: Marks the verifier's own calls in stored results.
VERIFY_CONTEXT = {"campaign_id": "deploy-verification"}


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    seconds: float | None = None
    target: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "target_seconds": self.target,
        }


def timed(name: str, ok: Status, detail: str, seconds: float, target: float) -> Check:
    """A check whose success turns into a warning when it took longer than its target."""
    if ok == "passed" and seconds > target:
        return Check(name, "warning", f"{detail}; slower than {target:g} s", seconds, target)
    return Check(name, ok, detail, seconds, target)


def ws_base(url: str) -> str:
    """The ws:// or wss:// base of an http(s) or ws(s) URL, without a trailing slash."""
    for plain, socket in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(plain):
            return socket + url[len(plain) :].rstrip("/")
    return url.rstrip("/")


@asynccontextmanager
async def open_ws(
    url: str, headers: list[tuple[str, str]], *, limit: float
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client that closes its own TCP stream on the way out.

    trio-websocket 0.12 can leave the socket open when the server closes first (a
    ResourceWarning at exit), so the stream is closed here whatever happened, after a close
    handshake (bounded, and shielded so that a cancelled caller still closes with 1000).
    """
    encoded = [(k.encode(), v.encode()) for k, v in headers]
    async with open_websocket_url(
        url,
        extra_headers=encoded,
        max_message_size=MAX_MESSAGE,
        connect_timeout=limit,
        disconnect_timeout=min(limit, 5.0),
    ) as ws:
        try:
            yield ws
        finally:
            try:
                # Close the WebSocket first, so the server sees 1000, not a dropped socket.
                with trio.CancelScope(shield=True), trio.move_on_after(min(limit, 5.0)):
                    await ws.aclose()
            finally:
                await ws._stream.aclose()  # no public API closes it


async def next_json(ws: WebSocketConnection, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Read until a JSON message whose type is in ``kinds`` (or ``error``) arrives."""
    while True:
        frame = await ws.get_message()
        if isinstance(frame, bytes):
            continue
        message = json.loads(frame)
        if isinstance(message, dict) and message.get("type") in (*kinds, "error"):
            return message


def describe_error(exc: BaseException) -> str:
    """One line on a network or protocol failure: a close code, a timeout, or the error."""
    if isinstance(exc, ConnectionClosed) and exc.reason is not None:
        return f"closed {exc.reason.code} {exc.reason.reason or ''}".strip()
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    text = str(exc).splitlines()[0] if str(exc) else ""
    cause = exc.__cause__
    if not text and cause is not None:
        text = str(cause)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def check_get(
    client: httpx.AsyncClient, path: str, name: str
) -> tuple[Check, dict[str, Any] | None]:
    """GET ``path``; return the check and the JSON body (None when there is none)."""
    started = time.perf_counter()
    try:
        response = await client.get(path)
    except httpx.HTTPError as exc:
        return Check(name, "failed", describe_error(exc), time.perf_counter() - started), None
    seconds = time.perf_counter() - started
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Check(name, "failed", f"HTTP {response.status_code}, not JSON", seconds), None
    if path == "/health":
        # "state" is the detailed one (loading...); "status" the dashboard's three words.
        state = str(body.get("state", body.get("status")))
        ok = _HEALTH_STATUS.get(state, "failed")
        detail = f"HTTP {response.status_code}, status {state}"
        return timed(name, ok, detail, seconds, HEALTH_TARGET), body
    if response.status_code != 200:
        return Check(name, "failed", f"HTTP {response.status_code}", seconds), body
    if path == "/maqsam/status":
        configured = body.get("configured") is True
        detail = "configured" if configured else "not configured (MAQSAM_TOKEN unset)"
        return timed(
            name, "passed" if configured else "warning", detail, seconds, HEALTH_TARGET
        ), body
    detail = f"{body.get('service', '?')} {body.get('version', '?')}"
    return timed(name, "passed", f"HTTP 200, {detail}", seconds, HEALTH_TARGET), body


def engine_checks(health: dict[str, Any]) -> list[Check]:
    """One check per engine that /health reports."""
    engines = health.get("engines")
    if not isinstance(engines, dict):
        return [Check("engines", "failed", "/health has no engines")]
    checks = []
    for kind, slot in sorted(engines.items()):
        if not isinstance(slot, dict):
            continue
        state = str(slot.get("state"))
        label = f"{slot.get('name', '?')} {slot.get('model') or ''}".strip()
        status = _ENGINE_STATUS.get(state, "degraded")
        if kind == "tts_preferred":
            status = "degraded"  # the preferred engine failed and a fallback speaks instead
        detail = f"{label}: {state}"
        if slot.get("load_seconds") is not None:
            detail += f" in {slot['load_seconds']} s"
        if slot.get("error") and state != "loaded":
            detail += f" ({slot['error']})"
        checks.append(Check(f"engine {kind}", status, detail))
    return checks


async def check_connect(base: str, path: str, limit: float) -> Check:
    """Time the handshake of ``path``; an immediate 1008 still proves the endpoint is there."""
    name = f"connect {path}"
    started = time.perf_counter()
    try:
        async with open_ws(base + path, [], limit=limit) as ws:
            seconds = time.perf_counter() - started
            with trio.move_on_after(SETTLE_SECONDS):
                # A close is read below: ws.closed holds its code and reason.
                with contextlib.suppress(ConnectionClosed):
                    await ws.get_message()
            closed = ws.closed
    except (HandshakeError, OSError) as exc:
        return Check(
            name, "failed", describe_error(exc), time.perf_counter() - started, CONNECT_TARGET
        )
    if closed is None or closed.code == 1000:
        return timed(name, "passed", "reachable", seconds, CONNECT_TARGET)
    reason = closed.reason or ""
    if closed.code == 1008 and "rate limit" in reason:
        return Check(name, "warning", f"rate limited ({reason})", seconds, CONNECT_TARGET)
    if closed.code in (1008, 1002):
        detail = f"reachable, auth required (closed {closed.code}: {reason})"
        return timed(name, "passed", detail, seconds, CONNECT_TARGET)
    return Check(name, "warning", f"closed {closed.code}: {reason}", seconds, CONNECT_TARGET)


async def check_tts(base: str, text: str, dialect: str, limit: float) -> tuple[Check, bytes, int]:
    """Speak ``text`` on /ws/tts; return the check and the reply as (PCM, rate)."""
    name = f"tts round trip ({dialect})"
    started = time.perf_counter()
    pcm, rate = b"", ECHO_RATE
    try:
        with trio.fail_after(limit):
            async with open_ws(base + "/ws/tts", [], limit=limit) as ws:
                if dialect == "legacy":
                    await ws.send_message("tts:" + text)
                    pcm, rate = await _legacy_reply_audio(ws)
                else:
                    pcm, rate = await _json_reply_audio(ws, text)
    except (HandshakeError, OSError, ConnectionClosed, trio.TooSlowError, RuntimeError) as exc:
        return (
            Check(name, "failed", describe_error(exc), time.perf_counter() - started, VOICE_TARGET),
            b"",
            0,
        )
    seconds = time.perf_counter() - started
    detail = f"{len(pcm) / 2 / rate:.2f} s of audio at {rate} Hz"
    if not pcm:
        return Check(name, "failed", "no audio came back", seconds, VOICE_TARGET), b"", 0
    return timed(name, "passed", detail, seconds, VOICE_TARGET), pcm, rate


async def _json_reply_audio(ws: WebSocketConnection, text: str) -> tuple[bytes, int]:
    await ws.send_message(json.dumps({"type": "say", "text": text, "id": "verify"}))
    start = await next_json(ws, ("audio.start",))
    if start.get("type") == "error":
        raise RuntimeError(f"error {start.get('code')}: {start.get('message')}")
    rate = int(start.get("sample_rate", ECHO_RATE))
    chunks = []
    while True:
        frame = await ws.get_message()
        if isinstance(frame, bytes):
            chunks.append(frame)
            continue
        message = json.loads(frame)
        if message.get("type") == "audio.end":
            return b"".join(chunks), rate
        if message.get("type") == "error":
            raise RuntimeError(f"error {message.get('code')}: {message.get('message')}")


async def _legacy_reply_audio(ws: WebSocketConnection) -> tuple[bytes, int]:
    while True:
        frame = await ws.get_message()
        if isinstance(frame, bytes):
            try:
                return read_wav(frame)
            except AudioError as exc:
                raise RuntimeError(f"reply is not a valid WAV file: {exc}") from None
        if frame.startswith("error: "):
            raise RuntimeError(frame)


def generated_speech(rate: int = ECHO_RATE) -> bytes:
    """Half a second of a voiced, harmonic-rich sound between silences, as PCM s16le.

    Not words: a real recogniser may hear nothing in it, which still proves the round trip.
    """
    t = np.arange(int(0.6 * rate)) / rate
    pitch = 140.0
    voiced = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 12))
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return silence(0.3, rate) + float32_to_pcm16(0.3 * voiced * envelope) + silence(0.6, rate)


async def check_stt(base: str, pcm: bytes, rate: int, limit: float) -> Check:
    """Send one WAV of ``pcm`` on /ws/echo (legacy dialect); expect a transcription."""
    name = "stt round trip (/ws/echo)"
    audio = resample(pcm, rate, ECHO_RATE) + silence(0.6, ECHO_RATE)
    started = time.perf_counter()
    try:
        with trio.fail_after(limit):
            async with open_ws(base + "/ws/echo", [], limit=limit) as ws:
                await ws.send_message(write_wav(audio, ECHO_RATE))
                while True:
                    frame = await ws.get_message()
                    if isinstance(frame, str) and frame.startswith(("transcription:", "error:")):
                        break
    except (HandshakeError, OSError, ConnectionClosed, trio.TooSlowError) as exc:
        return Check(
            name, "failed", describe_error(exc), time.perf_counter() - started, VOICE_TARGET
        )
    seconds = time.perf_counter() - started
    if frame == "error: no speech detected":
        # Recognition ran and heard nothing (what an empty transcription was before).
        detail = f"{len(audio) / 2 / ECHO_RATE:.2f} s sent, heard no speech"
        return timed(name, "passed", detail, seconds, VOICE_TARGET)
    if frame.startswith("error:"):
        return Check(name, "failed", frame, seconds, VOICE_TARGET)
    # The verifier's own synthetic audio, never a patient's: safe to show.
    heard = frame.partition(":")[2].strip()
    detail = f"{len(audio) / 2 / ECHO_RATE:.2f} s sent, heard {heard!r}"
    return timed(name, "passed", detail, seconds, VOICE_TARGET)


async def check_maqsam(base: str, token: str, limit: float) -> Check:
    """Connect to /ws/maqsam with the ``Auth`` header, send session.setup, expect session.ready."""
    name = "maqsam handshake"
    setup = {
        "type": "session.setup",
        "data": {
            "context": {
                "id": f"verify-{int(time.time())}",
                "direction": "outbound",
                "custom": dict(VERIFY_CONTEXT),
            }
        },
    }
    return await _expect_ready(
        name, base + "/ws/maqsam", [("Auth", token)], setup, "session.ready", limit
    )


async def check_secure(base: str, secret: str, limit: float) -> Check:
    """Connect to /ws/secure with the bearer secret; expect ``ready``."""
    headers = [("Authorization", f"Bearer {secret}")]
    return await _expect_ready("secure connect", base + "/ws/secure", headers, None, "ready", limit)


async def _expect_ready(
    name: str,
    url: str,
    headers: list[tuple[str, str]],
    first: dict[str, Any] | None,
    ready: str,
    limit: float,
) -> Check:
    started = time.perf_counter()
    try:
        with trio.fail_after(limit):
            async with open_ws(url, headers, limit=limit) as ws:
                if first is not None:
                    await ws.send_message(json.dumps(first))
                message = await next_json(ws, (ready,))
                seconds = time.perf_counter() - started
    except (HandshakeError, OSError, ConnectionClosed, trio.TooSlowError) as exc:
        return Check(
            name, "failed", describe_error(exc), time.perf_counter() - started, CONNECT_TARGET
        )
    if message.get("type") != ready:
        return Check(name, "failed", f"error {message.get('code')}", seconds, CONNECT_TARGET)
    return timed(name, "passed", f"{ready} received", seconds, CONNECT_TARGET)
