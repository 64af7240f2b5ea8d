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

Hot switch (:meth:`EngineManager.refresh`): when a model's files appear or change on disk (a
background download finished, an operator installed one by hand, ``hana-voice models
reload``), the model is loaded in a worker thread while the old engine keeps serving, then the
manager's engine is replaced in one step. A call takes its engines once, when it starts
(:meth:`EngineManager.snapshot`), so calls in progress finish on the old engine, which is freed
when the last of them ends. Each kind has one lock and remembers the fingerprint (inode, size,
modification time) of the files it loaded, so however many triggers arrive, the same files are
never loaded twice; a load that fails keeps the engine in use and is not retried for the same
files (``hana-voice models reload`` forces one more try).
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


#: What a model directory looked like when it was loaded; None when it is not installed.
Fingerprint = tuple[Any, ...]


class EngineSet:
    """The engines one call uses, taken when the call starts.

    A hot switch later does not change them: the call finishes on what it started with. An
    engine the call started without (still loading, or its model still downloading) is taken
    the first time the call asks after it became available, as before hot switches existed.
    """

    def __init__(self, manager: EngineManager) -> None:
        self._manager = manager
        self._stt = manager.stt
        self._tts = manager.tts

    @property
    def stt(self) -> SpeechToText | None:
        if self._stt is None:
            self._stt = self._manager.stt
        return self._stt

    @property
    def tts(self) -> TextToSpeech | None:
        if self._tts is None:
            self._tts = self._manager.tts
        return self._tts

    @property
    def stt_state(self) -> str:
        return LOADED if self._stt is not None else self._manager.stt_slot.state

    @property
    def tts_state(self) -> str:
        return LOADED if self._tts is not None else self._manager.tts_slot.state


@dataclass
class EngineSlot:
    """One engine's state as /health shows it."""

    kind: str
    name: str
    model: str
    state: str = PENDING
    error: str | None = None
    load_seconds: float | None = None
    #: How many engines of this kind were switched to after start-up (hot switches).
    switches: int = 0
    #: Why the last attempt to switch to new files failed (the engine in use stays).
    switch_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "state": self.state,
            "error": self.error,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 3),
            "switches": self.switches,
            "switch_error": self.switch_error,
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


def _default_fingerprint(settings: Settings, kind: str) -> Fingerprint | None:
    from hana_voice.models.watch import stt_fingerprint, tts_fingerprint

    return stt_fingerprint(settings) if kind == "stt" else tts_fingerprint(settings)


@dataclass
class Loaders:
    """The blocking loader functions; tests replace them with fakes."""

    stt: Callable[[Settings], SpeechToText] = _default_load_stt
    espeak: Callable[[Settings], TextToSpeech] = _default_load_espeak
    xtts: Callable[[Settings], TextToSpeech] = _default_load_xtts
    xtts_present: Callable[[Settings], bool] = field(
        default=lambda s: (xtts_dir(s) / "config.json").is_file()
    )
    #: ``fingerprint(settings, "stt"|"tts")``: the model files' identity, None if not installed
    #: (for tts: the XTTS model's).
    fingerprint: Callable[[Settings, str], Fingerprint | None] = _default_fingerprint


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
        #: Called once TTS is ready, and again after each switch to a new TTS engine
        #: (prompt-cache warm-up hooks in here).
        self.on_tts_ready: list[Callable[[TextToSpeech], Any]] = []
        #: Called after each hot switch with the kind ("stt" or "tts").
        self.on_switch: list[Callable[[str], Any]] = []
        self._locks = {"stt": trio.Lock(), "tts": trio.Lock()}
        #: The files each engine in use was loaded from, and files that failed to load.
        self._loaded_from: dict[str, Fingerprint | None] = {"stt": None, "tts": None}
        self._failed_from: dict[str, Fingerprint | None] = {"stt": None, "tts": None}

    def snapshot(self) -> EngineSet:
        """The engines a call starting now uses for its whole life."""
        return EngineSet(self)

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

    async def _fingerprint(self, kind: str) -> Fingerprint | None:
        try:
            return await trio.to_thread.run_sync(self.loaders.fingerprint, self.settings, kind)
        except Exception:  # an unreadable directory counts as not installed
            return None

    async def _load_stt(self) -> None:
        async with self._locks["stt"]:
            self.stt_slot.model = str(self.settings.vosk_model_path)
            self.stt_loading.set()
            files = await self._fingerprint("stt")
            self.stt = await self._load(self.stt_slot, self.loaders.stt)
            self._remember("stt", files, self.stt is not None)

    async def _load_tts(self) -> None:
        async with self._locks["tts"]:
            xtts_files = await self._fingerprint("tts") if self._wants_xtts() else None
            if self.tts_slot.name == "xtts":
                self.tts_slot.model = self.settings.tts_model_name
                tts = await self._load(self.tts_slot, self.loaders.xtts)
                self._remember("tts", xtts_files, tts is not None)
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

    def _wants_xtts(self) -> bool:
        return self.settings.tts_engine in ("auto", "xtts")

    def _remember(self, kind: str, files: Fingerprint | None, loaded: bool) -> None:
        if loaded:
            self._loaded_from[kind], self._failed_from[kind] = files, None
        else:
            self._failed_from[kind] = files

    def _in_use(self, kind: str) -> bool:
        """Is the engine of ``kind`` in use the one loaded from the model files?"""
        if kind == "stt":
            return self.stt is not None
        return self.tts is not None and self.tts_slot.name == "xtts"

    async def refresh(self, kind: str, *, force: bool = False) -> bool:
        """Load ``kind``'s model if its files are new since the engine in use was loaded, and
        switch new calls to it; True if it switched. Never raises; concurrent calls wait.

        ``kind`` is "stt" (the Vosk model) or "tts" (the XTTS model, when TTS_ENGINE is
        auto or xtts). ``force`` retries files that failed to load before.
        """
        if self.settings.skip_model_loading or (kind == "tts" and not self._wants_xtts()):
            return False
        await self.loaded.wait()  # the start-up load decides first
        async with self._locks[kind]:
            files = await self._fingerprint(kind)
            if files is None:
                return False
            if self._in_use(kind) and files == self._loaded_from[kind]:
                return False
            if not force and files == self._failed_from[kind]:
                return False
            return await self._switch(kind, files)

    async def _switch(self, kind: str, files: Fingerprint) -> bool:
        current = self.stt_slot if kind == "stt" else self.tts_slot
        if kind == "stt":
            slot = EngineSlot("stt", "vosk", str(self.settings.vosk_model_path))
            loader: Callable[[Settings], Any] = self.loaders.stt
        else:
            slot = EngineSlot("tts", "xtts", self.settings.tts_model_name)
            loader = self.loaders.xtts
        engine = await self._load(slot, loader)
        self._remember(kind, files, engine is not None)
        if engine is None:
            if (self.stt if kind == "stt" else self.tts) is not None:
                current.switch_error = slot.error  # keep serving with the engine in use
            elif kind == "stt":
                self.stt_slot = slot
            else:
                self.tts_slot = slot
            return False
        slot.switches = current.switches + 1
        # One step each, between two checkpoints: a call starting now sees old or new, whole.
        if kind == "stt":
            self.stt, self.stt_slot = engine, slot
        else:
            self.tts, self.tts_slot, self.tts_preferred = engine, slot, None
        log_event(
            log,
            logging.INFO,
            "engine.switched",
            kind=kind,
            engine=slot.name,
            previous=current.name,
            previous_state=current.state,
            switches=slot.switches,
        )
        if kind == "tts":
            for hook in self.on_tts_ready:
                hook(engine)
        for on_switch in self.on_switch:
            on_switch(kind)
        return True

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
