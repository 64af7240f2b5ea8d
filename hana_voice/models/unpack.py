"""Safe archive extraction and atomic installation of a model directory.

An archive is unpacked into a staging directory beside the destination (same filesystem, so
the final ``os.replace`` is atomic), checked for the expected top-level directory and required
files, and only then moved into place: a crash or a bad archive never leaves a half model where
the service looks for one.

Extraction refuses, rather than rewrites, any member that would land outside the staging
directory: absolute paths, ``..`` components, drive letters, links (zip) and links pointing
outside (tar, via the standard library's ``data`` filter), device files.

Size: with ``max_bytes`` (each manifest model has one), an archive whose members add up to more
is refused before anything is written, and a zip member that inflates past what its header
declared is cut off while it is written: a small archive cannot fill the volume.
"""

from __future__ import annotations

import contextlib
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

from hana_voice.errors import DownloadError


def _check_member_name(archive: Path, name: str) -> PurePosixPath:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (posix.parts and ":" in posix.parts[0]):
        raise DownloadError(f"{archive.name}: refusing absolute member path {name!r}")
    if ".." in posix.parts:
        raise DownloadError(f"{archive.name}: refusing member path with '..': {name!r}")
    return posix


def _check_total(archive: Path, declared: int, max_bytes: int | None) -> None:
    if max_bytes is not None and declared > max_bytes:
        raise DownloadError(
            f"{archive.name}: unpacks to {declared} bytes, more than the {max_bytes} bytes "
            "allowed for this model; refusing it"
        )


class _Budget:
    """Counts bytes written across members; raises once the model's ceiling is passed."""

    def __init__(self, archive: Path, max_bytes: int | None) -> None:
        self.archive, self.left = archive, max_bytes

    def copy(self, src: IO[bytes], out: IO[bytes]) -> None:
        while block := src.read(1024 * 1024):
            if self.left is not None:
                self.left -= len(block)
                if self.left < 0:
                    raise DownloadError(
                        f"{self.archive.name}: unpacks to more than the bytes allowed for this "
                        "model (a member is larger than its header says); refusing it"
                    )
            out.write(block)


def extract_zip(archive: Path, dest: Path, max_bytes: int | None = None) -> None:
    """Unpack a zip into ``dest``, verifying every member's CRC and the size ceiling."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member_name(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise DownloadError(f"{archive.name}: refusing link member {info.filename!r}")
            _check_total(archive, sum(info.file_size for info in members), max_bytes)
            budget = _Budget(archive, max_bytes)
            root = dest.resolve()
            for info in members:
                target = (dest / _check_member_name(archive, info.filename)).resolve()
                if root not in (target, *target.parents):
                    raise DownloadError(f"{archive.name}: {info.filename!r} leaves the archive")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    budget.copy(src, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        # BadZipFile also comes on a CRC mismatch; zlib.error and EOFError on a damaged or cut
        # deflate stream inside a member.
        raise DownloadError(f"{archive.name}: not a valid zip archive: {exc}") from exc


def extract_tar(archive: Path, dest: Path, max_bytes: int | None = None) -> None:
    """Unpack a tar (any compression) into ``dest`` through the ``data`` filter.

    A tar member's header size is what extraction writes, so checking their sum suffices.
    """
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member_name(archive, member.name)
            _check_total(archive, sum(m.size for m in members if m.isfile()), max_bytes)
            tf.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise DownloadError(f"{archive.name}: refusing unsafe member: {exc}") from exc
    except tarfile.TarError as exc:
        raise DownloadError(f"{archive.name}: not a valid tar archive: {exc}") from exc


def extract(archive: Path, dest: Path, max_bytes: int | None = None) -> None:
    if zipfile.is_zipfile(archive):
        extract_zip(archive, dest, max_bytes)
    elif tarfile.is_tarfile(archive):
        extract_tar(archive, dest, max_bytes)
    else:
        raise DownloadError(f"{archive.name}: neither a zip nor a tar archive")


def missing_parts(directory: Path, required: Iterable[tuple[str, ...]]) -> list[str]:
    """The required groups of which no path exists under ``directory`` (' or '-joined)."""
    return [
        " or ".join(group)
        for group in required
        if not any((directory / path).is_file() for path in group)
    ]


def is_installed(directory: Path, required: Iterable[tuple[str, ...]]) -> bool:
    return directory.is_dir() and not missing_parts(directory, required)


def _replace_dir(staged: Path, final: Path, *, force: bool) -> None:
    """Move ``staged`` to ``final``; with ``force`` an old ``final`` is swapped out first."""
    old: Path | None = None
    if final.exists():
        if not force:
            raise DownloadError(f"{final} exists; pass --force to replace it")
        old = final.with_name(f".old-{final.name}-{staged.parent.name}")
        final.replace(old)
    try:
        staged.replace(final)
    except OSError:
        if old is not None:
            old.replace(final)  # put the previous model back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _staging_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".staging-{final.name}-", dir=final.parent))


def install_archive(
    archive: Path,
    final: Path,
    required: Iterable[tuple[str, ...]],
    *,
    force: bool = False,
    max_bytes: int | None = None,
) -> None:
    """Unpack ``archive``, whose single top-level directory must be named ``final.name``."""
    staging = _staging_dir(final)
    try:
        extract(archive, staging, max_bytes)
        tops = sorted(p.name for p in staging.iterdir() if p.name != "__MACOSX")
        if tops != [final.name]:
            raise DownloadError(
                f"{archive.name}: expected one top-level directory {final.name!r}, found {tops}"
            )
        _validate(staging / final.name, required, archive.name)
        _replace_dir(staging / final.name, final, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_files(
    files: Iterable[Path],
    final: Path,
    required: Iterable[tuple[str, ...]],
    *,
    force: bool = False,
    max_bytes: int | None = None,
) -> None:
    """Move downloaded files into a new directory ``final`` (same filesystem), atomically."""
    files = list(files)
    total = sum(path.stat().st_size for path in files)
    if max_bytes is not None and total > max_bytes:
        raise DownloadError(
            f"{final.name}: the files add up to {total} bytes, more than the {max_bytes} bytes "
            "allowed for this model; refusing them"
        )
    staging = _staging_dir(final)
    moved: list[tuple[Path, Path]] = []
    try:
        inner = staging / final.name
        inner.mkdir()
        for path in files:
            path.replace(inner / path.name)
            moved.append((inner / path.name, path))
        _validate(inner, required, final.name)
        _replace_dir(inner, final, force=force)
        moved.clear()
    finally:
        for now, before in moved:  # a failed install keeps the downloads for the next run
            with contextlib.suppress(OSError):
                now.replace(before)
        shutil.rmtree(staging, ignore_errors=True)


def _validate(directory: Path, required: Iterable[tuple[str, ...]], what: str) -> None:
    missing = missing_parts(directory, required)
    if missing:
        raise DownloadError(f"{what}: incomplete model, missing {', '.join(missing)}")
