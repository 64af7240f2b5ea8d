"""The service's state is private to the user it runs as (issue 11: the results database was
created world-readable).

The data directory (results database, prompt cache) is made 0700 and the database with its
SQLite ``-wal`` and ``-shm`` files 0600. The database file is created 0600 *before* SQLite
opens it, so there is no moment it is readable by others; SQLite gives the ``-wal`` and
``-shm`` files it creates the mode of the database file. A file that belongs to another user
(a volume prepared by hand) cannot be changed: that is logged, not fatal.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hana_voice.logs import log_event

__all__ = ["DIR_MODE", "FILE_MODE", "private_database", "private_dir"]

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except PermissionError:
        log_event(log, logging.WARNING, "files.not_private", path=str(path), mode=oct(mode))


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, DIR_MODE)


def private_database(path: Path) -> None:
    """Create the database file 0600 if absent; make it and its SQLite side files 0600."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE)
    os.close(fd)
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in _SQLITE_SIDE_FILES)):
        if candidate.exists():
            _chmod(candidate, FILE_MODE)
