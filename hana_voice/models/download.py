"""``hana-voice models download [stt|tts|all|MODEL]``: fetch, verify and install models.

For each model: nothing happens when its directory is already complete (no request is made);
otherwise its files are downloaded into ``MODELS_DIR/.downloads/`` (resumable ``.part``
files, see :mod:`hana_voice.models.fetch`), verified, and installed atomically (see
:mod:`hana_voice.models.unpack`). The downloaded archive is deleted once installed.

Exit status: 0 when every model is present afterwards, 1 on a :class:`DownloadError`,
2 on a usage or settings error. Messages go to stderr; the progress bar too.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from hana_voice.errors import DownloadError, SettingsError
from hana_voice.models import manifest
from hana_voice.models.fetch import DEFAULT_OPTIONS, FetchOptions, fetch, normalise_sha256
from hana_voice.models.lock import DOWNLOADS, LockBusy, model_lock
from hana_voice.models.manifest import ModelSpec, RemoteFile
from hana_voice.models.unpack import install_archive, install_files, is_installed
from hana_voice.settings import Settings

USER_AGENT = "hana-voice-model-download/1.0"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def make_client(timeout: float = 30.0) -> httpx.Client:
    """A blocking client: connect/read timeouts per request, redirects followed (HF uses them)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        follow_redirects=True,
        # Ranges count bytes of the stored file: a compressed transfer would shift them.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def download_model(
    spec: ModelSpec,
    models_dir: Path,
    client: httpx.Client,
    *,
    base_url: str | None = None,
    sha256: dict[str, str] | None = None,
    force: bool = False,
    options: FetchOptions = DEFAULT_OPTIONS,
    final: Path | None = None,
    wait_for_lock: bool = True,
    say: Callable[[str], None] = _say,
    on_file: Callable[[int, RemoteFile], None] | None = None,
) -> bool:
    """Make sure ``spec`` is installed under ``models_dir``; return False if it already was.

    ``sha256`` maps file names to expected digests, overriding the manifest. ``final`` is
    where the model goes (default ``models_dir/spec.target``). Only one process at a time
    downloads a model (see :mod:`hana_voice.models.lock`): ``wait_for_lock`` waits for
    another one to finish, otherwise :class:`LockBusy` is raised. ``on_file(index, file)``
    is told before each file is fetched.
    """
    final = final if final is not None else models_dir / spec.target
    if not force and is_installed(final, spec.required):
        say(f"{spec.name}: already present in {final}")
        return False
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(model_lock(models_dir, spec.name, blocking=False))
        except LockBusy as busy:
            if not wait_for_lock:
                raise
            say(f"{spec.name}: {busy} is downloading it; waiting for it to finish")
            stack.enter_context(model_lock(models_dir, spec.name, blocking=True))
        if not force and is_installed(final, spec.required):
            say(f"{spec.name}: installed meanwhile by another process in {final}")
            return False
        _fetch_and_install(
            spec, models_dir, client, final, base_url, sha256 or {}, force, options, say, on_file
        )
    downloads = models_dir / DOWNLOADS / spec.name
    for directory in (downloads, downloads.parent):
        try:
            directory.rmdir()  # only when empty: other models (or their locks) may be there
        except OSError:
            break
    say(f"{spec.name}: installed in {final} (licence: {spec.licence})")
    return True


def _fetch_and_install(
    spec: ModelSpec,
    models_dir: Path,
    client: httpx.Client,
    final: Path,
    base_url: str | None,
    overrides: dict[str, str],
    force: bool,
    options: FetchOptions,
    say: Callable[[str], None],
    on_file: Callable[[int, RemoteFile], None] | None,
) -> None:
    say(f"{spec.name}: downloading {spec.description} ({_approx(spec)}) into {final}")
    # Staging left by a process killed while unpacking (we hold the lock: nobody uses it).
    for stale in final.parent.glob(f".staging-{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    downloads = models_dir / DOWNLOADS / spec.name
    fetched: list[Path] = []
    for index, file in enumerate(spec.files):
        if on_file is not None:
            on_file(index, file)
        dest = downloads / file.name
        if dest.is_file() and (file.size is None or dest.stat().st_size == file.size):
            # Fetched and verified by an earlier run that stopped before installing it.
            fetched.append(dest)
            continue
        fetched.append(
            fetch(
                client,
                spec.url_for(file, base_url),
                dest,
                size=file.size,
                sha256=overrides.get(file.name, file.sha256),
                options=options,
            )
        )
    try:
        if spec.archive:
            (archive,) = fetched
            install_archive(
                archive, final, spec.required, force=force, max_bytes=spec.max_unpacked_bytes
            )
            archive.unlink(missing_ok=True)
        else:
            install_files(
                fetched, final, spec.required, force=force, max_bytes=spec.max_unpacked_bytes
            )
    except DownloadError:
        # A verified download that does not install (a corrupt or wrong archive): fetch
        # afresh next time rather than fail on the same bytes for ever.
        for path in fetched:
            path.unlink(missing_ok=True)
        raise


def _approx(spec: ModelSpec) -> str:
    if len(spec.files) == 1:
        return spec.files[0].approx_size
    return ", ".join(f"{f.name} {f.approx_size}" for f in spec.files)


def _parse_sha256(values: Sequence[str], specs: Sequence[ModelSpec]) -> dict[str, str]:
    """``HEX`` (when one file is selected) or ``FILE=HEX`` pairs."""
    files: list[RemoteFile] = [f for spec in specs for f in spec.files]
    result: dict[str, str] = {}
    for value in values:
        name, sep, digest = value.rpartition("=")
        if not sep:
            if len(files) != 1:
                raise DownloadError(
                    "--sha256 HEX needs exactly one file selected; use --sha256 FILE=HEX"
                )
            name = files[0].name
        elif name not in {f.name for f in files}:
            raise DownloadError(f"--sha256: {name!r} is not one of the selected files")
        result[name] = normalise_sha256(digest)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=manifest.choices(),
        help="stt (Vosk Arabic), tts (XTTS v2), all (both; default) or one model's name",
    )
    parser.add_argument("--models-dir", type=Path, help="default: MODELS_DIR from the settings")
    parser.add_argument("--url", help="base URL of a mirror holding the same file names")
    parser.add_argument(
        "--sha256",
        action="append",
        default=[],
        metavar="[FILE=]HEX",
        help="expected sha256 (overrides the manifest); repeat as FILE=HEX for several files",
    )
    parser.add_argument("--force", action="store_true", help="download and replace even if present")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--retries", type=int, default=5, help="attempts after the first (5)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per network read")
    parser.set_defaults(func=run_download)


def add_parser(subparsers: Any) -> None:
    """Register ``models download`` on the CLI's top-level subparsers."""
    models = subparsers.add_parser("models", help="manage speech models")
    actions = models.add_subparsers(dest="models_command", required=True)
    download = actions.add_parser(
        "download",
        help="download, verify and install models",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    add_arguments(download)
    from hana_voice.models.watch import add_reload_parser

    add_reload_parser(actions)


def run_download(args: argparse.Namespace) -> int:
    """Run the command for parsed ``args``; return the exit status."""
    specs = manifest.resolve(args.what)
    models_dir: Path | None = args.models_dir
    if models_dir is None:
        try:
            models_dir = Settings.from_env().models_dir
        except SettingsError as exc:
            _say(f"error: {exc}")
            return 2
    options = FetchOptions(retries=max(0, args.retries), progress=not args.no_progress)
    try:
        sha256 = _parse_sha256(args.sha256, specs)
        with make_client(args.timeout) as client:
            for spec in specs:
                download_model(
                    spec,
                    models_dir,
                    client,
                    base_url=args.url,
                    sha256=sha256,
                    force=args.force,
                    options=options,
                )
    except DownloadError as exc:
        _say(f"error: {exc}")
        return 1
    except OSError as exc:
        _say(f"error: {models_dir}: {exc}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hana_voice.models.download [stt|tts|all] [options]``."""
    parser = argparse.ArgumentParser(prog="hana-voice models download", description=__doc__)
    add_arguments(parser)
    return run_download(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
