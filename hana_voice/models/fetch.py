"""Fetching one large file over HTTP: resumable, retried, size- and checksum-verified.

Bytes go to ``NAME.part`` beside the destination. A later attempt (a retry after a dropped
connection, or the next run of the command) asks for the rest with an HTTP ``Range`` header;
a server that ignores it and answers 200 gets the file from the start. Only a file whose size
and sha256 match is renamed to its final name; a mismatch deletes the ``.part`` file, since
resuming onto bad bytes could never succeed.

This is command-line code: it blocks, and it is never called from the server's event loop.
httpx errors are translated into :class:`DownloadError` here.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

from hana_voice.errors import DownloadError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


#: ``on_progress(bytes_in_file, total_or_None)``; it may raise to stop the download (the
#: ``.part`` file stays for a later resume).
ProgressHook = Callable[[int, int | None], None]


@dataclass(frozen=True)
class FetchOptions:
    """How hard to try and what to show."""

    retries: int = 5
    backoff: float = 2.0
    progress: bool = True
    on_progress: ProgressHook | None = None


DEFAULT_OPTIONS = FetchOptions()


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def normalise_sha256(value: str) -> str:
    """Lower-case hex, or DownloadError naming what is wrong."""
    text = value.strip().lower()
    if not _SHA256.match(text):
        raise DownloadError(f"{value!r} is not a sha256 (64 hexadecimal characters)")
    return text


def _announced_sha256(response: httpx.Response) -> str | None:
    """The sha256 Hugging Face sends for LFS files (``X-Linked-Etag``), if any."""
    for resp in (*response.history, response):
        etag = str(resp.headers.get("x-linked-etag", "")).strip().strip('"').lower()
        if etag.startswith("w/"):
            etag = etag[2:].strip('"')
        if _SHA256.match(etag):
            return etag
    return None


def _total_from(response: httpx.Response, offset: int) -> int | None:
    if response.status_code == 206:
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if match is None or match.group(1) is None or int(match.group(1)) != offset:
            return None
        return int(match.group(3)) if match.group(3) != "*" else None
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


class _Restart(Exception):
    """The server's answer does not continue the partial file: start again from zero."""


def fetch(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    options: FetchOptions = DEFAULT_OPTIONS,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and verify it; return ``dest``."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    announced: str | None = None
    attempt = 0
    while True:
        attempt += 1
        try:
            total, announced_now = _attempt(client, url, part, options)
            announced = announced_now or announced
            break
        except _Restart:
            part.unlink(missing_ok=True)
            if attempt > options.retries:
                raise DownloadError(
                    f"{url}: the server does not resume or restart cleanly"
                ) from None
        except (httpx.TransportError, _ServerBusy) as exc:
            if attempt > options.retries:
                raise DownloadError(
                    f"{url}: gave up after {attempt} attempts: {type(exc).__name__}: {exc}"
                ) from exc
            print(
                f"{dest.name}: {type(exc).__name__}; resuming (attempt {attempt + 1})",
                file=sys.stderr,
            )
            time.sleep(options.backoff * attempt)
    _verify(url, part, total=total, size=size, sha256=sha256 or announced)
    part.replace(dest)
    return dest


class _ServerBusy(Exception):
    """A 5xx or 429 answer: worth another try."""


def _attempt(
    client: httpx.Client, url: str, part: Path, options: FetchOptions
) -> tuple[int | None, str | None]:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        status = response.status_code
        if status == 416 and offset:
            # Asked past the end: either the part is already whole, or it is bigger than
            # the file now served. The total in Content-Range tells which.
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match and match.group(3) == str(offset):
                return offset, _announced_sha256(response)
            raise _Restart
        if status in (429, 500, 502, 503, 504):
            raise _ServerBusy(f"HTTP {status}")
        if status not in (200, 206):
            raise DownloadError(f"{url}: HTTP {status} {response.reason_phrase}")
        if status == 206:
            total = _total_from(response, offset)
            if total is None:
                raise _Restart
            mode = "ab"
        else:
            offset = 0  # the server ignored Range (or none was sent): begin again
            total = _total_from(response, 0)
            mode = "wb"
        if total is not None:
            _check_space(part.parent, total - offset, url)
        with (
            part.open(mode) as fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                file=sys.stderr,
                disable=not options.progress,
                leave=True,
            ) as bar,
        ):
            # No chunk size: bytes are written as they arrive, so a dropped connection
            # loses nothing already received and the resume starts right after it.
            done = offset
            hook = options.on_progress
            if hook is not None:
                hook(done, total)
            for block in response.iter_bytes():
                fh.write(block)
                bar.update(len(block))
                if hook is not None:
                    done += len(block)
                    fh.flush()  # what the hook reports is on disk for a resume
                    hook(done, total)
        return total, _announced_sha256(response)


def _check_space(directory: Path, needed: int, url: str) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise DownloadError(
            f"{url}: needs {needed / 1e6:.0f} MB but {directory} has {free / 1e6:.0f} MB free"
        )


def _verify(
    url: str, part: Path, *, total: int | None, size: int | None, sha256: str | None
) -> None:
    got = part.stat().st_size
    for label, expected in (("the server announced", total), ("the manifest pins", size)):
        if expected is not None and got != expected:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: got {got} bytes but {label} {expected}")
    if sha256 is not None:
        actual = sha256_of(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: sha256 mismatch (expected {sha256}, got {actual}); the partial file "
                "was deleted; check the mirror or the --sha256 value"
            )
