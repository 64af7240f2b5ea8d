"""Stream a WAV file to any Hana Voice WebSocket endpoint in real time and keep what comes back.

``bin/voice-tester URL --endpoint /ws/healthcare-questionnaire --wav in.wav --out replies/``

The wire format follows the endpoint (or ``--mode``): the browser JSON protocol (``start``,
then 20 ms binary PCM frames at 16 or 8 kHz), Maqsam (``session.setup``, then base64 mu-law
``audio.input`` at 8 kHz), Twilio-style media streams (``connected``, ``start``, ``media``), or
the legacy dialect (one whole WAV frame on /ws/echo, ``tts:`` text on /ws/tts). After the file
the tester keeps streaming silence, as a phone line does, until the server ends the call,
nothing has arrived for ``--idle`` seconds, or ``--duration`` is over.

Into ``--out`` go one WAV file per reply utterance (``reply-001.wav`` ...) and
``messages.jsonl``: every JSON message both ways, with reply audio payloads replaced by their
size and credentials redacted. ``--dtmf 1,1,3#`` presses keys after successive prompts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from hana_voice.audio.pcm import silence
from hana_voice.audio.resample import resample
from hana_voice.audio.wav import read_wav, write_wav
from hana_voice.errors import AudioError
from hana_voice.telephony.twilio_signature import SIGNATURE_HEADER, compute_signature
from hana_voice.verification.checks import describe_error, open_ws, ws_base
from hana_voice.verification.voice_tester_sessions import (
    SESSIONS,
    Options,
    Outcome,
    Recorder,
    Session,
)

FRAME_SECONDS = 0.02
MODES = ("auto", "browser", "maqsam", "twilio", "legacy")


def endpoint_url(options: Options) -> str:
    """The ws(s):// URL to open, with ``?token=`` when one is given."""
    base = ws_base(options.url)
    if options.endpoint:
        scheme, _, rest = base.partition("://")
        base = f"{scheme}://{rest.split('/', 1)[0]}/{options.endpoint.lstrip('/')}"
    if options.token:
        base += ("&" if "?" in base else "?") + "token=" + quote(options.token, safe="")
    return base


def choose_mode(options: Options) -> str:
    if options.mode != "auto":
        return options.mode
    path = urlsplit(endpoint_url(options)).path
    if path.startswith("/ws/maqsam"):
        return "maqsam"
    if path.startswith("/ws/telephony"):
        return "twilio"
    if path.startswith("/ws/echo") or (path.startswith("/ws/tts") and options.say):
        return "legacy"
    return "browser"


async def _stream(session: Session, pcm: bytes, options: Options) -> None:
    """Send ``pcm`` in 20 ms frames in real time (times ``speed``), then silence until idle."""
    step = 2 * int(session.rate * FRAME_SECONDS)
    gap = FRAME_SECONDS / options.speed
    quiet = silence(FRAME_SECONDS, session.rate)
    next_at = trio.current_time()
    offset = 0
    while not session.ended.is_set():
        frame = pcm[offset : offset + step] if offset < len(pcm) else quiet
        offset += step
        if offset >= len(pcm) and trio.current_time() - session.last_heard > options.idle:
            return
        await session.send_audio(frame.ljust(step, b"\0"))
        next_at += gap
        await trio.sleep_until(next_at)


async def _legacy(
    ws: WebSocketConnection, recorder: Recorder, pcm: bytes, rate: int, options: Options
) -> None:
    if options.say:
        recorder.message("out", {"text": "tts:" + options.say})
        await ws.send_message("tts:" + options.say)
    else:
        recorder.message("out", {"binary_wav_seconds": round(len(pcm) / 2 / rate, 3)})
        await ws.send_message(write_wav(pcm, rate))
    with trio.move_on_after(options.idle + 10), contextlib.suppress(ConnectionClosed):
        while True:
            frame = await ws.get_message()
            if isinstance(frame, bytes):
                reply, reply_rate = read_wav(frame)
                recorder.add(reply, reply_rate)
                recorder.finish(interrupted=False)
                return
            recorder.message("in", {"text": frame})
            if frame.startswith("transcription: "):
                recorder.outcome.transcripts.append(frame.removeprefix("transcription: "))
                return
            if frame.startswith("error: "):
                return


async def run_tester(options: Options) -> Outcome:
    """Run one call as ``options`` say; return what came back (also saved under ``out``)."""
    mode = choose_mode(options)
    pcm, rate = b"", options.rate
    if options.wav is not None:
        pcm, rate = read_wav(options.wav.read_bytes())
    outcome = Outcome()
    recorder = Recorder(options.out, outcome)
    headers = []
    if options.secret:
        headers.append(("Authorization", f"Bearer {options.secret}"))
    if options.maqsam_token:
        headers.append(("Auth", options.maqsam_token))
    if options.twilio_auth_token:
        # Twilio signs the wss:// URL it dials; the server rebuilds the same one.
        signed = "wss://" + endpoint_url(options).split("://", 1)[1]
        signature = compute_signature(options.twilio_auth_token, signed)
        headers.append((SIGNATURE_HEADER, signature))
    connections: list[WebSocketConnection] = []
    try:
        with trio.move_on_after(options.duration if options.duration else float("inf")):
            async with open_ws(endpoint_url(options), headers, limit=options.connect_seconds) as ws:
                connections.append(ws)
                if mode == "legacy":
                    await _legacy(ws, recorder, pcm, rate, options)
                else:
                    session = SESSIONS[mode](ws, recorder, options)
                    audio = resample(pcm, rate, session.rate) if pcm else b""
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(session.receive)
                        # A refusal shows here as a failed send; the close code is read below.
                        with contextlib.suppress(ConnectionClosed):
                            await session.setup()
                            await _stream(session, audio, options)
                        nursery.cancel_scope.cancel()
    finally:
        recorder.close()
    # Read after the context closed the socket: a close either side has its code by then.
    closed = connections[0].closed if connections else None
    if closed is not None:
        outcome.close = (closed.code, closed.reason or "")
    return outcome


def parse_dtmf(text: str | None) -> list[str]:
    """``1,1,3#`` -> one group per prompt; without commas, one key per prompt."""
    if not text:
        return []
    return [group for group in text.split(",") if group] if "," in text else list(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voice-tester",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("url", help="http(s):// base URL, or a ws(s):// URL with the endpoint's path")
    add("--endpoint", help="endpoint path, e.g. /ws/maqsam/healthcare (default: the URL's path)")
    add("--wav", type=Path, help="the WAV file to stream (any rate, channels averaged)")
    add("--out", type=Path, default=Path("replies"), help="folder for replies (default replies/)")
    add("--mode", choices=MODES, default="auto", help="wire format (default: from the endpoint)")
    add("--rate", type=int, choices=(16000, 8000), default=16000, help="browser PCM rate")
    add("--say", help="text to speak instead of audio (/ws/tts, or a say on /ws)")
    add("--token", help="?token= value: a JWT for /ws/secure*, or TELEPHONY_TOKEN")
    env = os.environ.get
    add("--secret", default=env("VERIFY_SECRET"), help="VOICE_SERVICE_SECRET, sent as bearer")
    add("--maqsam-token", default=env("VERIFY_MAQSAM_TOKEN"), help="MAQSAM_TOKEN, as Auth header")
    add(
        "--twilio-auth-token",
        default=env("VERIFY_TWILIO_AUTH_TOKEN"),
        help="TWILIO_AUTH_TOKEN: sign the upgrade with X-Twilio-Signature as Twilio does",
    )
    add("--dtmf", help="keys to press after successive prompts: 11 or 1,1,3#")
    add("--duration", type=float, help="end the call after this many seconds")
    add("--idle", type=float, default=3.0, help="end after this many quiet seconds (default 3)")
    add("--speed", type=float, default=1.0, help="stream this many times faster than real time")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tester; exit 0 when the call ran, 1 when the server refused it, 2 on errors."""
    args = build_parser().parse_args(argv)
    if args.wav is None and args.say is None:
        print("voice-tester: give --wav FILE or --say TEXT", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("voice-tester: --speed must be above 0", file=sys.stderr)
        return 2
    options = Options(
        url=args.url,
        endpoint=args.endpoint,
        wav=args.wav,
        out=args.out,
        mode=args.mode,
        rate=args.rate,
        say=args.say,
        token=args.token,
        secret=args.secret,
        maqsam_token=args.maqsam_token,
        twilio_auth_token=args.twilio_auth_token,
        dtmf=parse_dtmf(args.dtmf),
        duration=args.duration,
        idle=args.idle,
        speed=args.speed,
    )
    try:
        outcome = trio.run(run_tester, options)
    except (HandshakeError, OSError, AudioError) as exc:
        print(f"voice-tester: {describe_error(exc)}", file=sys.stderr)
        return 2
    for path in outcome.replies:
        print(f"saved {path}")
    for text in outcome.transcripts:
        print(f"transcript: {text}")
    closed = "open" if outcome.close is None else f"closed {outcome.close[0]} {outcome.close[1]}"
    print(f"{outcome.messages} messages logged in {options.out / 'messages.jsonl'}; {closed}")
    refused = outcome.close is not None and outcome.close[0] not in (1000, 1001)
    return 1 if refused else 0
