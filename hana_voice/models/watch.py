"""Noticing models that appear in MODELS_DIR while the service runs, and asking it to look.

Three things make the running service look at its model directories and switch engines
(:meth:`hana_voice.engines.manager.EngineManager.refresh`):

- a finished background download (:mod:`hana_voice.models.auto`);
- polling every ``MODELS_WATCH_SECONDS`` (10 s; 0 turns it off). A change must look the same
  on two polls in a row before it is loaded, so a model still being copied in by hand is not
  loaded half-way (copying into a temporary name and renaming it into place is better still);
- ``SIGHUP``, which ``hana-voice models reload`` sends: it loads at once, and also retries
  files that failed to load before. Each serving process writes its pid to
  ``DATA_DIR/run/<host>-<pid>.pid`` while it serves; the command signals every live one of
  its host.

A fingerprint (inode, size and modification time of the directory, its top-level entries and
the files the engine needs) identifies what is installed; reading it costs a few ``stat`` calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from hana_voice.logs import log_event
from hana_voice.models.manifest import VOSK_AR_LINTO, XTTS_V2
from hana_voice.models.unpack import is_installed
from hana_voice.settings import Settings

if TYPE_CHECKING:
    from hana_voice.engines.manager import EngineManager

log = logging.getLogger(__name__)

RUN_DIR = "run"
KINDS = ("stt", "tts")


def fingerprint(directory: Path, required: Iterable[tuple[str, ...]]) -> tuple[Any, ...] | None:
    """What ``directory`` holds now, or None when the model there is not complete."""
    required = tuple(required)
    if not is_installed(directory, required):
        return None
    parts: list[Any] = []
    top = directory.stat()
    parts.append((top.st_ino, top.st_mtime_ns))
    paths = sorted(directory.iterdir()) + [directory / p for group in required for p in group]
    for path in paths:
        with contextlib.suppress(OSError):
            st = path.stat()
            parts.append((path.name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(parts)


def stt_fingerprint(settings: Settings) -> tuple[Any, ...] | None:
    return fingerprint(settings.vosk_model_path, VOSK_AR_LINTO.required)


def tts_fingerprint(settings: Settings) -> tuple[Any, ...] | None:
    from hana_voice.engines.manager import xtts_dir

    # The speakers file is optional for a hand-installed model with its own speaker WAV.
    needed = tuple(group for group in XTTS_V2.required if group != ("speakers_xtts.pth",))
    return fingerprint(xtts_dir(settings), needed)


# ------------------------------------------------------------------ pid files and the signal


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / RUN_DIR


def _host() -> str:
    return socket.gethostname().replace("/", "_")


@contextlib.contextmanager
def pid_file(settings: Settings) -> Iterator[Path]:
    """``DATA_DIR/run/<host>-<pid>.pid`` while the block runs (the service serves).

    The host is in the name because replicas may share DATA_DIR on a volume and pids repeat
    across containers: ``models reload`` signals only the services of its own host.
    """
    directory = run_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_host()}-{os.getpid()}.pid"
    path.write_text(f"{os.getpid()}\n", encoding="utf-8")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def serving_pids(settings: Settings) -> list[int]:
    """Pids of this host's services that wrote a pid file and still run; stale files go."""
    directory = run_dir(settings)
    pids: list[int] = []
    mine = sorted(directory.glob(f"{_host()}-*.pid")) if directory.is_dir() else []
    for path in mine:
        try:
            pid = int(path.read_text(encoding="utf-8").strip())
            os.kill(pid, 0)
        except PermissionError:
            pids.append(pid)  # alive, under another user: the signal will say so
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
        else:
            pids.append(pid)
    return pids


class ModelWatcher:
    """Polls the model directories and listens for SIGHUP; asks the engines to refresh."""

    def __init__(self, settings: Settings, engines: EngineManager) -> None:
        self.settings = settings
        self.engines = engines
        self._seen: dict[str, Any] = {}
        self.reloads = 0
        #: Set once SIGHUP is handled (before it, the signal's default would end the process).
        self.ready = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if _main_thread():  # signals reach only the main thread's trio run
                await nursery.start(self._signals)
            if self.settings.models_watch_seconds > 0:
                nursery.start_soon(self._poll)
            self.ready.set()
            task_status.started()

    async def reload(self, *, force: bool = True) -> list[str]:
        """Refresh every kind now; the kinds that switched."""
        switched = []
        for kind in KINDS:
            if await self.engines.refresh(kind, force=force):
                switched.append(kind)
        return switched

    async def _signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                self.reloads += 1
                switched = await self.reload()
                log_event(log, logging.INFO, "models.reload", trigger="signal", switched=switched)

    async def _poll(self) -> None:
        await self.engines.loaded.wait()
        while True:
            await trio.sleep(self.settings.models_watch_seconds)
            for kind in KINDS:
                files = await trio.to_thread.run_sync(self._look, kind)
                settled = files is not None and files == self._seen.get(kind)
                self._seen[kind] = files
                if settled and await self.engines.refresh(kind):
                    log_event(log, logging.INFO, "models.reload", trigger="watch", kind=kind)

    def _look(self, kind: str) -> Any:
        try:
            return self.engines.loaders.fingerprint(self.settings, kind)
        except Exception:  # unreadable now; the next poll looks again
            return None


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ------------------------------------------------------------------ hana-voice models reload


def add_reload_parser(actions: Any) -> None:
    reload = actions.add_parser(
        "reload",
        help="make the running service load models installed by hand (SIGHUP)",
        description=(
            "Send SIGHUP to each service serving from DATA_DIR (found by its pid file in "
            "DATA_DIR/run/): it loads the models whose files changed and switches new calls "
            "to them. Exit status 1 when no running service was found."
        ),
    )
    reload.add_argument("--data-dir", type=Path, help="default: DATA_DIR from the settings")
    reload.set_defaults(func=run_reload)


def run_reload(args: Any) -> int:
    import sys

    settings = Settings.from_env()
    if args.data_dir is not None:
        settings = settings.with_overrides(data_dir=args.data_dir)
    pids = serving_pids(settings)
    if not pids:
        where = run_dir(settings)
        print(f"no running service found (no live pid file in {where})", file=sys.stderr)
        return 1
    failed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            failed += 1
            print(f"pid {pid}: {exc}", file=sys.stderr)
        else:
            print(f"asked pid {pid} to reload its models", file=sys.stderr)
    return 1 if failed == len(pids) else 0
