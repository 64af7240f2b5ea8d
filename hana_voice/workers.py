"""Worker processes sharing the port, so the event-loop work uses every core.

One trio event loop runs on one core: once it is saturated (telephony media frames are the
bulk of its work), more calls come late however many cores the box has. With ``WORKERS=N``
(default 1: one process, as before) the parent starts N worker processes (multiprocessing,
spawn) that each run the whole app: Hypercorn's trio worker and its own engines (each loads
its models: the memory cost is per worker, see docs/operations.md).

The port: each worker listens on its own socket bound with ``SO_REUSEPORT`` to the same
address, and the kernel spreads new connections over them (by a hash of the client's address
and port). One shared listening socket would not spread them: whichever loop wakes first takes
every connection, and an idle-looking worker would take them all.

The cap: the workers share ``MAX_CONCURRENT_SESSIONS`` through one counting semaphore the
parent creates; each worker draws a slot for every session it admits (besides its own
registry's check), so the service as a whole admits at most the cap however the connections
spread, and refuses (1013) only when all of it is in use, not when one worker's share is.

Shared state between workers is on disk and built for it: the SQLite results store runs in
WAL mode with ``busy_timeout``, and the outbox's claims are leases (two workers never deliver
the same row); calls a dead process left ``in_progress`` are recovered once, by the parent,
before any worker starts (a worker doing it would take a sibling's live calls for dead ones);
the prompt cache writes each file atomically (two workers warming at once at worst
synthesise a prompt twice). What is per process: metrics (each worker's /metrics counts its
own calls), the rate limiter (each worker counts the connections it accepted).

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
from typing import Any

from hana_voice.admission import SessionRegistry
from hana_voice.logs import configure_logging, log_event
from hana_voice.settings import Settings

__all__ = ["recover_interrupted", "run_workers", "share_cap", "worker_settings"]

log = logging.getLogger(__name__)


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings worker ``index`` runs with: one process of the pool.

    With results on PostgreSQL each worker is a replica of its own (its own heartbeat and
    leases), so a named replica gets a per-worker suffix.
    """
    replica = f"{settings.replica_id}-w{index}" if settings.replica_id else None
    return settings.with_overrides(workers=1, worker_index=index, replica_id=replica)


def share_cap(registry: SessionRegistry, slots: Any, cap: int) -> None:
    """Make ``registry`` draw a slot of the service-wide cap for every session it admits.

    ``slots`` is the parent's multiprocessing semaphore of ``cap`` slots; a session takes one
    when it is admitted (for telephony: once it has authenticated) and gives it back when it
    ends.
    """
    registry.capacity = cap
    registry.shared_slots = slots


def recover_interrupted(settings: Settings) -> int:
    """Mark calls a dead process left in progress incomplete, once, before any worker runs.

    A worker must not do it at its own start-up: a sibling that started first may already
    hold live calls. On PostgreSQL (shared by replicas) nothing is done here: each worker
    recovers only its own previous life and replicas silent for a lease.
    """
    from hana_voice.results.database import ResultDatabase

    if settings.database_url is not None:
        return 0

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = ResultDatabase(settings.database_path)
    try:
        return len(db.recover_interrupted(time.time()))
    finally:
        db.close()


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    return sock


def listen(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the shared address."""
    sock = _socket(host, port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(1024)
    return sock


class _WorkerTag(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "hana_fields", None) or {}
        record.hana_fields = {**fields, "worker": self.index}
        return True


def _worker_main(settings: Settings, index: int, port: int, slots: Any, cap: int) -> None:
    """One worker process: the app on its own socket of the shared port, until SIGTERM."""
    import trio

    from hana_voice.app import create_app
    from hana_voice.server import hypercorn_config, serve
    from hana_voice.services import services_of

    configure_logging(settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerTag(index))
    sock = listen(settings.host, port)
    sock.setblocking(False)
    app = create_app(settings)
    share_cap(services_of(app).registry, slots, cap)
    config = hypercorn_config(settings, bind=f"fd://{sock.fileno()}")
    trio.run(serve, app, config)


def run_workers(settings: Settings) -> int:
    """Bind, start ``settings.workers`` workers, wait; the exit status for the CLI."""
    # Bound, never listening: it fixes the port (PORT=0 picks one) for the workers to share.
    sock = _socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    recovered = recover_interrupted(settings)
    if recovered:
        log_event(log, logging.WARNING, "service.recovered_calls", calls=recovered)
    context = multiprocessing.get_context("spawn")
    cap = settings.max_concurrent_sessions
    slots = context.BoundedSemaphore(cap)
    processes = [
        context.Process(
            target=_worker_main,
            args=(worker_settings(settings, index), index, port, slots, cap),
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
            max_sessions=cap,
        )
        print(f"hana-voice: {settings.workers} workers on {host}:{port}", file=sys.stderr)
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
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
