"""Worker processes sharing one listening socket, so the event-loop work uses every core.

One trio event loop runs on one core: once it is saturated (telephony media frames are the
bulk of its work), more calls come late however many cores the box has. With ``WORKERS=N``
(default 1: one process, as before) the parent binds the port, then starts N worker processes
(multiprocessing, spawn) that each run the whole app on the inherited socket: Hypercorn's trio
worker, its own engines (each loads its models: the memory cost is per worker, see
docs/operations.md) and its share of ``MAX_CONCURRENT_SESSIONS`` (the cap divided between the
workers, the first ones taking the remainder), so the machine never admits more calls than the
cap. Connections go to whichever worker's loop accepts first, which is the less busy one.

Shared state between workers is on disk and built for it: the SQLite results store runs in
WAL mode with ``busy_timeout``, and the outbox's claims are leases (two workers never deliver
the same row); calls a dead process left ``in_progress`` are recovered once, by the parent,
before any worker starts (a worker doing it would take a sibling's live calls for dead ones);
the prompt cache writes each file atomically (two workers warming at once at worst
synthesise a prompt twice). What is per process: metrics (each worker's /metrics
counts its own calls), the rate limiter (each worker counts the connections it accepted).

Signals: SIGTERM or SIGINT to the parent is passed to every worker, which drains its calls as
a single process does (SHUTDOWN_GRACE). A worker that dies takes the others down with it
(exit status 1), so the platform restarts the service whole rather than run short of capacity.
Each log line of a worker carries ``"worker": <index>``.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from types import FrameType

from hana_voice.logs import configure_logging, log_event
from hana_voice.settings import Settings

__all__ = ["run_workers", "session_share", "worker_settings"]

log = logging.getLogger(__name__)


def session_share(cap: int, workers: int, index: int) -> int:
    """Worker ``index``'s share of ``cap`` sessions: the shares add up to ``cap``."""
    return cap // workers + (1 if index < cap % workers else 0)


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings worker ``index`` runs with: its share of the session cap, one process."""
    share = session_share(settings.max_concurrent_sessions, settings.workers, index)
    return settings.with_overrides(
        max_concurrent_sessions=max(share, 1), workers=1, worker_index=index
    )


def recover_interrupted(settings: Settings) -> int:
    """Mark calls a dead process left in progress incomplete, once, before any worker runs.

    A worker must not do it at its own start-up: a sibling that started first may already
    hold live calls.
    """
    from hana_voice.results.database import ResultDatabase

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = ResultDatabase(settings.database_path)
    try:
        return len(db.recover_interrupted(time.time()))
    finally:
        db.close()


def bind(settings: Settings) -> socket.socket:
    """The listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server(
        (settings.host.strip("[]"), settings.port), family=family, backlog=1024
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock


class _WorkerTag(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "hana_fields", None) or {}
        record.hana_fields = {**fields, "worker": self.index}
        return True


def _worker_main(settings: Settings, index: int, sock: socket.socket) -> None:
    """One worker process: the app, served on the inherited socket until SIGTERM/SIGINT."""
    import trio

    from hana_voice.app import create_app
    from hana_voice.server import hypercorn_config, serve

    configure_logging(settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerTag(index))
    sock.setblocking(False)
    app = create_app(settings)
    config = hypercorn_config(settings, bind=f"fd://{sock.fileno()}")
    trio.run(serve, app, config)


def run_workers(settings: Settings) -> int:
    """Bind, start ``settings.workers`` workers, wait; the exit status for the CLI."""
    sock = bind(settings)
    host, port = sock.getsockname()[:2]
    recovered = recover_interrupted(settings)
    if recovered:
        log_event(log, logging.WARNING, "service.recovered_calls", calls=recovered)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_main,
            args=(worker_settings(settings, index), index, sock),
            name=f"hana-worker-{index}",
        )
        for index in range(settings.workers)
    ]
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        log_event(
            log,
            logging.INFO,
            "service.workers",
            workers=settings.workers,
            host=host,
            port=port,
            pids=[p.pid for p in processes],
            max_sessions=[p_settings.max_concurrent_sessions for p_settings in _shares(settings)],
        )
        print(f"hana-voice: {settings.workers} workers on {host}:{port}", file=sys.stderr)
        sock.close()  # the workers hold their own copies
        status = 0
        alive = list(processes)
        while alive:
            multiprocessing.connection.wait([p.sentinel for p in alive])
            for process in [p for p in alive if not p.is_alive()]:
                alive.remove(process)
                if not stopping and process.exitcode != 0:
                    log_event(
                        log,
                        logging.ERROR,
                        "service.worker_died",
                        worker=process.name,
                        exitcode=process.exitcode,
                    )
                    status = 1
                    forward(signal.SIGTERM, None)
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _shares(settings: Settings) -> list[Settings]:
    return [worker_settings(settings, index) for index in range(settings.workers)]
