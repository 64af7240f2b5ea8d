"""Models that arrive on their own: background download at start (MODELS_AUTO_DOWNLOAD).

With ``MODELS_AUTO_DOWNLOAD`` set to ``stt``, ``tts`` or ``all``, each selected model that is
missing when the service starts is fetched by the ordinary downloader
(:func:`hana_voice.models.download.download_model`: resumable ``.part`` files, size and
checksum checks, the unpacked-size ceiling, atomic install, one process per model through the
lock file) while the service already serves. Which model: for ``stt`` the Vosk model that
``VOSK_MODEL_PATH`` names (it must be one the manifest knows), installed at that path; for
``tts`` XTTS v2, installed where ``TTS_MODEL_NAME`` points. ``MODELS_MIRROR_URL`` replaces the
models' home as the base URL.

Each download runs in its own low-priority thread (``nice`` 10, so live calls keep the CPU
they need) and reports its progress to ``/health`` and ``/metrics``. A failure (unreachable
host, HTTP 5xx, a dropped connection, a corrupt archive) is logged and retried after a delay
that doubles from 1 s up to ``MODELS_RETRY_MAX_SECONDS``; each retry resumes the ``.part``
file. It never ends the service. When another process holds the model's lock the download
waits (state ``waiting``) and, once that process has installed the model, uses it.

Once installed, the engine manager loads the model and switches new calls to it
(:meth:`hana_voice.engines.manager.EngineManager.refresh`); the watcher of
:mod:`hana_voice.models.watch` does the same for models installed by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio
from prometheus_client.core import Metric

from hana_voice.errors import DownloadError
from hana_voice.logs import log_event
from hana_voice.models import manifest
from hana_voice.models.download import download_model, make_client
from hana_voice.models.fetch import FetchOptions
from hana_voice.models.lock import LockBusy
from hana_voice.models.manifest import ModelSpec, RemoteFile
from hana_voice.models.progress import DownloadStatus, metric_families, redact
from hana_voice.models.unpack import is_installed
from hana_voice.models.watch import ModelWatcher, pid_file
from hana_voice.settings import Settings

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.engines.manager import EngineManager
    from hana_voice.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds between looks at a lock held by another process.
LOCK_POLL = 2.0


class _Stopped(Exception):
    """The service is stopping: the download thread leaves, keeping its ``.part`` file."""


@dataclass(frozen=True)
class Target:
    """A model to download and where it goes; ``problem`` says why it cannot be."""

    kind: str
    spec: ModelSpec | None
    final: Path
    problem: str | None = None


def targets(settings: Settings) -> list[Target]:
    """The models MODELS_AUTO_DOWNLOAD selects, in order (stt first: calls need it most)."""
    choice = settings.models_auto_download
    chosen: list[Target] = []
    if choice in ("stt", "all"):
        path = settings.vosk_model_path
        spec = manifest.MODELS.get(path.name)
        if spec is None or spec.kind != "stt":
            known = ", ".join(m.name for m in manifest.MODELS.values() if m.kind == "stt")
            chosen.append(
                Target(
                    "stt",
                    None,
                    path,
                    f"VOSK_MODEL_PATH names {path.name!r}, which the downloader does not know "
                    f"(known: {known}); install it by hand",
                )
            )
        else:
            chosen.append(Target("stt", spec, path))
    if choice in ("tts", "all"):
        from hana_voice.engines.manager import xtts_dir

        chosen.append(Target("tts", manifest.XTTS_V2, xtts_dir(settings)))
    return chosen


class AutoDownloader:
    """Downloads the selected missing models in the background, then asks for the switch."""

    def __init__(
        self,
        settings: Settings,
        engines: EngineManager,
        *,
        first_delay: float = 1.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.engines = engines
        self.first_delay = first_delay
        self.read_timeout = read_timeout
        self.targets = targets(settings)
        self.status: dict[str, DownloadStatus] = {}
        for target in self.targets:
            name = target.spec.name if target.spec else target.final.name
            status = DownloadStatus(name, target.kind, str(target.final))
            if target.problem is not None:
                status.state, status.last_error = "unavailable", target.problem
            self.status[name] = status
        #: Set when every selected model is installed (or cannot be).
        self.settled = trio.Event()

    async def run(self) -> None:
        """Download every selected model that is missing; returns when all are installed."""
        async with trio.open_nursery() as nursery:
            for target in self.targets:
                if target.spec is not None:
                    nursery.start_soon(self._one, target, target.spec)
                else:
                    log_event(log, logging.WARNING, "models.auto_unavailable", kind=target.kind)
        self.settled.set()

    async def _one(self, target: Target, spec: ModelSpec) -> None:
        status = self.status[spec.name]
        delay = self.first_delay
        while True:
            if await trio.to_thread.run_sync(is_installed, target.final, spec.required):
                if status.state == "pending":
                    status.state = "installed"
                    return  # there at start: the engine manager loads it as usual
                break
            status.attempts += 1
            status.state = "downloading"
            status.started_at = status.started_at or time.monotonic()
            try:
                await run_in_own_thread(lambda stop: self._download(target, spec, status, stop))
            except LockBusy:
                status.attempts -= 1
                status.state = "waiting"
                await trio.sleep(LOCK_POLL)
                continue
            except Exception as exc:
                # The top of a background task: whatever went wrong (DownloadError, OSError,
                # or a surprise from a misbehaving mirror) is reported and retried, and never
                # reaches the app's nursery, which would stop the service.
                status.failures += 1
                status.state = "retrying"
                status.last_error = self._clean(f"{type(exc).__name__}: {exc}")
                status.next_attempt_at = time.monotonic() + delay
                log_event(
                    log,
                    logging.WARNING,
                    "models.download_failed",
                    model=spec.name,
                    attempt=status.attempts,
                    error=status.last_error,
                    expected=isinstance(exc, (DownloadError, OSError)),
                    retry_in=round(delay, 1),
                )
                await trio.sleep(delay)
                delay = min(delay * 2, self.settings.models_retry_max_seconds)
                continue
            break
        status.state = "installed"
        status.last_error = None
        if status.started_at is not None:
            status.seconds = time.monotonic() - status.started_at
        log_event(
            log,
            logging.INFO,
            "models.downloaded",
            model=spec.name,
            attempts=status.attempts,
            bytes=status.bytes_done,
            seconds=status.seconds,
        )
        await self.engines.refresh(target.kind)

    def _download(
        self, target: Target, spec: ModelSpec, status: DownloadStatus, stop: threading.Event
    ) -> None:
        def on_progress(done: int, total: int | None) -> None:
            if stop.is_set():
                raise _Stopped
            status.progress(done, total)
            if total is not None and done >= total and spec.archive:
                status.state = "installing"

        def on_file(index: int, file: RemoteFile) -> None:
            status.begin_file(index, file, spec.files)

        # The fetcher's own retries are off: this loop retries, with its back-off and state.
        options = FetchOptions(retries=0, progress=False, on_progress=on_progress)
        with make_client(self.read_timeout) as client:
            download_model(
                spec,
                self.settings.models_dir,
                client,
                base_url=self.settings.models_mirror_url,
                options=options,
                final=target.final,
                wait_for_lock=False,
                say=lambda text: log_event(
                    log, logging.INFO, "models.download", model=spec.name, message=self._clean(text)
                ),
                on_file=on_file,
            )
        status.state = "installed"

    def _clean(self, text: str) -> str:
        mirror = self.settings.models_mirror_url
        return text.replace(mirror, redact(mirror)) if mirror else text

    # -- reporting

    def health(self) -> dict[str, Any]:
        mirror = self.settings.models_mirror_url
        return {
            "auto_download": self.settings.models_auto_download,
            "mirror": redact(mirror) if mirror else None,
            "downloads": {name: s.as_dict() for name, s in self.status.items()},
        }

    def metric_families(self) -> Iterator[Metric]:
        return metric_families(self.status, self.engines.health())


async def run_in_own_thread(work: Callable[[threading.Event], T]) -> T:
    """Run ``work(stop)`` in a new low-priority thread; on cancellation set ``stop`` and leave.

    Not trio's thread cache: the priority is lowered for the thread's life, and a cached
    worker would carry it into engine work later.
    """
    token = trio.lowlevel.current_trio_token()
    finished = trio.Event()
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def body() -> None:
        # Without per-thread priorities (not Linux) the download runs at the normal one.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            outcome["value"] = work(stop)
        except BaseException as exc:  # handed to the waiting task, which re-raises it
            outcome["error"] = exc
        with contextlib.suppress(trio.RunFinishedError):  # the service stopped meanwhile
            token.run_sync_soon(finished.set)

    threading.Thread(target=body, name="model-download", daemon=True).start()
    try:
        await finished.wait()
    finally:
        stop.set()
    if "error" in outcome:
        error: BaseException = outcome["error"]
        raise error
    value: T = outcome["value"]
    return value


def install(app: QuartTrio, services: Services) -> None:
    """Start the auto-downloader (if selected) and the watcher while the app serves."""
    settings = services.settings
    downloader = AutoDownloader(settings, services.engines)
    watcher = ModelWatcher(settings, services.engines)
    services.extras["models"] = downloader
    services.extras["model_watcher"] = watcher

    @app.before_serving
    async def start_models() -> None:
        await trio.Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        app.nursery.start_soon(_serve_models, settings, downloader, watcher)


async def _serve_models(
    settings: Settings, downloader: AutoDownloader, watcher: ModelWatcher
) -> None:
    with pid_file(settings):
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            nursery.start_soon(downloader.run)
            await trio.sleep_forever()
