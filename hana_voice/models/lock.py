"""One downloader per model across processes: an advisory lock file beside the downloads.

``MODELS_DIR/.downloads/NAME.lock`` is locked with ``flock`` while a process fetches and
installs model NAME. The kernel drops the lock when its holder exits, killed or not, so a
crashed download never blocks the next one; the holder's ``.part`` files stay and the next
holder resumes them. The file holds the holder's pid and host for people reading the
directory; the lock itself, not the file's presence, is what counts.

Processes on different machines sharing a network filesystem get whatever ``flock`` gives
there (NFSv4 honours it; some FUSE filesystems do not).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

DOWNLOADS = ".downloads"


class LockBusy(Exception):
    """Another process holds the model's lock (raised only by non-blocking attempts)."""


def lock_path(models_dir: Path, name: str) -> Path:
    return models_dir / DOWNLOADS / f"{name}.lock"


def holder(path: Path) -> str:
    """Who last took the lock (``pid@host``), for messages; empty if unknown."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def model_lock(models_dir: Path, name: str, *, blocking: bool) -> Iterator[Path]:
    """Hold the download lock of model ``name``; :class:`LockBusy` if busy and not blocking.

    The holder deletes the lock file when it is done (no litter in ``MODELS_DIR``). A process
    that waited on the file meanwhile then holds a lock on a deleted file, so after taking
    the lock each process checks that the path still names its file and starts over if not.
    """
    path = lock_path(models_dir, name)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                raise LockBusy(holder(path) or "another process") from None
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:
                continue  # the previous holder deleted it while we waited: lock the new one
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}@{socket.gethostname()}\n".encode())
            try:
                yield path
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()  # still locked: nobody can take this file any more
            return
        finally:
            os.close(fd)  # also releases the lock
