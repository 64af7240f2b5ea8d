"""Loads the process-wide engines at start-up and reports their state to /health.

Models load in worker threads while the server already accepts connections; /health reads
the states below and never waits on a model. States of each engine:

- ``loading``: its loader is running;
- ``loaded``: ready;
- ``missing``: the model files are not there (the error names the path and missing parts);
- ``skipped``: SKIP_MODEL_LOADING=true;
- ``failed``: the loader raised (the error text says why).

Text-to-speech: TTS_ENGINE=xtts loads XTTS; if it cannot load and TTS_FALLBACK is on, the
embedded espeak-ng engine takes over (health shows both: ``tts`` is espeak, ``tts_preferred``
is the XTTS failure), so the service is never mute. TTS_ENGINE=auto uses XTTS when its model
directory exists and espeak otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from hana_voice.engines.base import SpeechToText, TextToSpeech
from hana_voice.errors import EngineUnavailable, ModelMissingError
from hana_voice.logs import log_event
from hana_voice.settings import Settings

log = logging.getLogger(__name__)

LOADED, LOADING, MISSING, SKIPPED, FAILED, PENDING = (
    "loaded",
    "loading",
    "missing",
    "skipped",
    "failed",
    "pending",
)


@dataclass
class EngineSlot:
    """One engine's state as /health shows it."""

    kind: str
    name: str
    model: str
    state: str = PENDING
    error: str | None = None
    load_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "state": self.state,
            "error": self.error,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 3),
        }


def _default_load_stt(settings: Settings) -> SpeechToText:
    from hana_voice.engines.vosk_stt import load_vosk

    return load_vosk(settings.vosk_model_path)


def _default_load_espeak(settings: Settings) -> TextToSpeech:
    from hana_voice.engines.espeak_tts import load_espeak

    return load_espeak(settings.espeak_voice)


def xtts_dir(settings: Settings) -> Path:
    from hana_voice.engines.xtts_paths import resolve_xtts_dir

    return resolve_xtts_dir(settings.tts_model_name, settings.models_dir)


def _default_load_xtts(settings: Settings) -> TextToSpeech:
    from hana_voice.engines.xtts_tts import load_xtts

    return load_xtts(
        xtts_dir(settings), settings.tts_device, settings.tts_speaker_wav, settings.tts_speaker
    )


@dataclass
class Loaders:
    """The blocking loader functions; tests replace them with fakes."""

    stt: Callable[[Settings], SpeechToText] = _default_load_stt
    espeak: Callable[[Settings], TextToSpeech] = _default_load_espeak
    xtts: Callable[[Settings], TextToSpeech] = _default_load_xtts
    xtts_present: Callable[[Settings], bool] = field(
        default=lambda s: (xtts_dir(s) / "config.json").is_file()
    )


class EngineManager:
    """Holds the loaded engines and their health."""

    def __init__(self, settings: Settings, loaders: Loaders | None = None) -> None:
        self.settings = settings
        self.loaders = loaders or Loaders()
        self.stt: SpeechToText | None = None
        self.tts: TextToSpeech | None = None
        self.stt_slot = EngineSlot("stt", "vosk", settings.vosk_model_path.name)
        self.tts_slot = EngineSlot("tts", self._initial_tts_name(), "")
        self.tts_preferred: EngineSlot | None = None
        self.loaded = trio.Event()
        #: Set once the STT loader is running (tests and start-up logs wait on it).
        self.stt_loading = trio.Event()
        #: Called once TTS is ready (prompt-cache warm-up hooks in here).
        self.on_tts_ready: list[Callable[[TextToSpeech], Any]] = []

    def _initial_tts_name(self) -> str:
        engine = self.settings.tts_engine
        if engine == "auto":
            try:
                engine = "xtts" if self.loaders.xtts_present(self.settings) else "espeak"
            except Exception:  # a bad TTS_MODEL_NAME: XTTS will report it when it loads
                engine = "xtts"
        return engine

    def require_stt(self) -> SpeechToText:
        if self.stt is None:
            raise EngineUnavailable(f"speech recognition is {self.stt_slot.state}")
        return self.stt

    def require_tts(self) -> TextToSpeech:
        if self.tts is None:
            raise EngineUnavailable(f"speech synthesis is {self.tts_slot.state}")
        return self.tts

    async def load_all(self, *, stt: bool = True, tts: bool = True) -> None:
        """Load the engines in worker threads, concurrently. Never raises.

        The command-line tools load only the engine they need (``stt``/``tts``).
        """
        wanted = [slot for slot, on in ((self.stt_slot, stt), (self.tts_slot, tts)) if on]
        if self.settings.skip_model_loading:
            for slot in wanted:
                slot.state = SKIPPED
                slot.error = "SKIP_MODEL_LOADING=true"
            self.loaded.set()
            return
        for slot in wanted:
            slot.state = LOADING
        async with trio.open_nursery() as nursery:
            if stt:
                nursery.start_soon(self._load_stt)
            if tts:
                nursery.start_soon(self._load_tts)
        self.loaded.set()

    async def _load(self, slot: EngineSlot, loader: Callable[[Settings], Any]) -> Any:
        slot.state = LOADING
        started = time.perf_counter()
        try:
            engine = await trio.to_thread.run_sync(loader, self.settings)
        except ModelMissingError as exc:
            slot.state, slot.error = MISSING, str(exc)
        except Exception as exc:
            slot.state, slot.error = FAILED, f"{type(exc).__name__}: {exc}"
        else:
            slot.state, slot.error = LOADED, None
            slot.load_seconds = time.perf_counter() - started
            slot.model = getattr(engine, "model_name", slot.model) or slot.model
            log_event(
                log,
                logging.INFO,
                "engine.loaded",
                kind=slot.kind,
                engine=slot.name,
                seconds=round(slot.load_seconds, 3),
            )
            return engine
        log_event(
            log,
            logging.WARNING,
            "engine.unavailable",
            kind=slot.kind,
            engine=slot.name,
            state=slot.state,
            error=slot.error,
        )
        return None

    async def _load_stt(self) -> None:
        self.stt_slot.model = str(self.settings.vosk_model_path)
        self.stt_loading.set()
        self.stt = await self._load(self.stt_slot, self.loaders.stt)

    async def _load_tts(self) -> None:
        if self.tts_slot.name == "xtts":
            self.tts_slot.model = self.settings.tts_model_name
            tts = await self._load(self.tts_slot, self.loaders.xtts)
            if tts is None and self.settings.tts_fallback:
                self.tts_preferred = self.tts_slot
                self.tts_slot = EngineSlot("tts", "espeak", self.settings.espeak_voice)
                tts = await self._load(self.tts_slot, self.loaders.espeak)
        else:
            self.tts_slot.model = f"espeak-ng:{self.settings.espeak_voice}"
            tts = await self._load(self.tts_slot, self.loaders.espeak)
        self.tts = tts
        if tts is not None:
            for hook in self.on_tts_ready:
                hook(tts)

    def health(self) -> dict[str, Any]:
        engines: dict[str, Any] = {"stt": self.stt_slot.as_dict(), "tts": self.tts_slot.as_dict()}
        if self.tts_preferred is not None:
            engines["tts_preferred"] = self.tts_preferred.as_dict()
        return engines

    def status(self) -> str:
        """healthy, degraded, loading or unhealthy, from the engines alone."""
        states = {self.stt_slot.state, self.tts_slot.state}
        if LOADING in states or PENDING in states:
            return "loading"
        if states == {LOADED} and self.tts_preferred is None:
            return "healthy"
        if self.tts_slot.state != LOADED and self.stt_slot.state != LOADED:
            # Skipped on purpose is an operator's choice: the service still answers.
            return "degraded" if states == {SKIPPED} else "unhealthy"
        return "degraded"
