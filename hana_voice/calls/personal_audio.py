"""Personal prompts synthesised for one call while it is set up, kept in memory only.

A prompt that names the patient (``{patient_name}``) or their appointment differs on every
call, so the prompt cache cannot serve it, and it must not: names are patient data and the
cache lives on disk. Instead the call's first personal prompts (the identity question, the
greeting) are synthesised as soon as the call's set-up arrives, alongside the results store's
write, and the player takes the audio from here. A prompt not prepared, or whose synthesis
failed, is streamed from the engine as before.

Cancellation: :meth:`PreparedAudio.prepare` runs in the caller's nursery; cancelling it stops
the engine thread (through :func:`~hana_voice.engines.async_engines.synthesize_stream`) and
leaves the entry empty, so a waiting :meth:`take` returns None and the player streams.
"""

from __future__ import annotations

import logging

import trio

from hana_voice.engines.async_engines import synthesize_stream
from hana_voice.engines.base import TextToSpeech
from hana_voice.engines.runner import EngineRunner
from hana_voice.errors import EngineError

log = logging.getLogger(__name__)


class PreparedAudio:
    """Text -> PCM for the prompts of one call; each text is synthesised at most once."""

    def __init__(self) -> None:
        self._done: dict[str, trio.Event] = {}
        self._pcm: dict[str, bytes] = {}

    def wanted(self, text: str) -> bool:
        return text in self._done

    async def prepare(self, tts: TextToSpeech, runner: EngineRunner, text: str) -> None:
        """Synthesise ``text`` now; errors leave it to be streamed when it is said."""
        if text in self._done:
            return
        done = self._done[text] = trio.Event()
        try:
            pieces: list[bytes] = []
            async with synthesize_stream(tts, runner, text) as stream:
                async for piece in stream:
                    pieces.append(piece)
            self._pcm[text] = b"".join(pieces)
        except EngineError as exc:
            log.warning("personal prompt not prepared: %s", exc.code)
        finally:
            done.set()

    async def take(self, text: str) -> bytes | None:
        """The audio of ``text`` (waiting for its synthesis to finish), once; else None."""
        done = self._done.get(text)
        if done is None:
            return None
        await done.wait()
        return self._pcm.pop(text, None)
