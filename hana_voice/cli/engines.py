"""``hana-voice say TEXT -o out.wav`` and ``hana-voice transcribe in.wav``: the engines, direct.

They load the same engines the service would (TTS_ENGINE with its espeak fallback,
VOSK_MODEL_PATH) through the same runner, so they double as a check of a deployment's models.
Transcripts are printed to stdout for the operator who asked; they are never logged.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any

import trio

from hana_voice.audio.decode import decode_utterance
from hana_voice.audio.wav import write_wav
from hana_voice.engines.async_engines import synthesize_stream, transcribe
from hana_voice.engines.manager import EngineManager
from hana_voice.engines.runner import EngineRunner
from hana_voice.errors import HanaError
from hana_voice.settings import Settings

TRANSCRIBE_RATE = 16000


def add_parser(subparsers: Any) -> None:
    say = subparsers.add_parser("say", help="synthesise Arabic text to a WAV file")
    say.add_argument("text", help="the text to speak (vocalised text reads best)")
    say.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    say.set_defaults(func=run_say)
    transcribe = subparsers.add_parser("transcribe", help="transcribe an audio file")
    transcribe.add_argument("input", type=Path, help="WAV, WebM/Opus, Ogg or any FFmpeg format")
    transcribe.add_argument(
        "--phrases", help="comma-separated phrase list (grammar mode) to restrict recognition"
    )
    transcribe.set_defaults(func=run_transcribe)


def _runner(settings: Settings) -> EngineRunner:
    return EngineRunner(trio.CapacityLimiter(1), settings.processing_timeout)


def run_say(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    return trio.run(_say, settings, args.text, args.output)


async def _engines(settings: Settings, *, stt: bool) -> EngineManager:
    """Load only the engine a command needs, as the service would (fallback included)."""
    manager = EngineManager(settings.with_overrides(skip_model_loading=False))
    await manager.load_all(stt=stt, tts=not stt)
    slot = manager.stt_slot if stt else manager.tts_slot
    if slot.state != "loaded":
        what = "speech recognition" if stt else "speech synthesis"
        print(f"hana-voice: {what} unavailable: {slot.error}", file=sys.stderr)
    return manager


async def _say(settings: Settings, text: str, output: Path) -> int:
    tts = (await _engines(settings, stt=False)).tts
    if tts is None:
        return 1
    started = time.perf_counter()
    first: float | None = None
    chunks: list[bytes] = []
    try:
        async with synthesize_stream(tts, _runner(settings), text) as stream:
            async for chunk in stream:
                first = first if first is not None else time.perf_counter() - started
                chunks.append(chunk)
    except HanaError as exc:
        print(f"hana-voice: {exc}", file=sys.stderr)
        return 1
    pcm = b"".join(chunks)
    await trio.Path(output).write_bytes(write_wav(pcm, tts.sample_rate))
    seconds = len(pcm) / 2 / tts.sample_rate
    print(
        f"{output}: {seconds:.2f} s at {tts.sample_rate} Hz from {tts.name} "
        f"(first audio after {1000 * (first or 0):.0f} ms)",
        file=sys.stderr,
    )
    return 0


def run_transcribe(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    phrases = [p.strip() for p in args.phrases.split(",")] if args.phrases else None
    return trio.run(_transcribe, settings, args.input, phrases)


async def _transcribe(settings: Settings, path: Path, phrases: list[str] | None) -> int:
    stt = (await _engines(settings, stt=True)).stt
    if stt is None:
        return 1
    runner = _runner(settings)
    try:
        data = await trio.Path(path).read_bytes()
        pcm = await runner.run(
            functools.partial(decode_utterance, max_seconds=3600.0),
            data,
            TRANSCRIBE_RATE,
            what="audio decoding",
        )
        text = await transcribe(stt, runner, pcm, TRANSCRIBE_RATE, phrases)
    except (HanaError, OSError) as exc:
        print(f"hana-voice: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0
