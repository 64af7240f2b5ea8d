"""The per-model lock file across real processes, and what a killed process leaves behind."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hana_voice.models.download import download_model, make_client
from hana_voice.models.fetch import FetchOptions
from hana_voice.models.lock import DOWNLOADS, LockBusy, lock_path, model_lock
from hana_voice.models.manifest import VOSK_AR_LINTO
from hana_voice.settings import DEFAULT_VOSK_MODEL
from tests.models.mirror import Mirror

QUIET = FetchOptions(retries=0, progress=False)
HOLD = """
import sys, time
from pathlib import Path
from hana_voice.models.lock import model_lock
with model_lock(Path(sys.argv[1]), sys.argv[2], blocking=True):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


@contextmanager
def hold_lock(models: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the model's lock for ``seconds``."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(models), DEFAULT_VOSK_MODEL, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        try:
            yield proc
        finally:
            proc.wait(10)


def test_another_process_holding_the_lock_is_waited_for(tmp_path: Path, mirror: Mirror) -> None:
    models = tmp_path / "models"
    with hold_lock(models, 1.5) as holder:
        assert str(holder.pid) in lock_path(models, DEFAULT_VOSK_MODEL).read_text()
        with make_client(5) as client:
            with pytest.raises(LockBusy, match=str(holder.pid)):
                download_model(
                    VOSK_AR_LINTO,
                    models,
                    client,
                    base_url=mirror.url,
                    options=QUIET,
                    wait_for_lock=False,
                )
            assert mirror.requests == [], "nothing fetched while another process holds it"
            started = time.monotonic()
            said: list[str] = []
            assert download_model(
                VOSK_AR_LINTO, models, client, base_url=mirror.url, options=QUIET, say=said.append
            )
        assert time.monotonic() - started > 0.5, "it waited for the holder"
        assert any("waiting for it to finish" in line for line in said)
    assert (models / DEFAULT_VOSK_MODEL / "am" / "final.mdl").is_file()
    assert not (models / DOWNLOADS).exists(), "lock file and downloads removed"


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with hold_lock(models, 60) as holder:
        holder.kill()
    with model_lock(models, DEFAULT_VOSK_MODEL, blocking=False):
        pass  # the kernel dropped the dead process's lock


def test_staging_left_by_a_killed_unpack_is_cleaned(tmp_path: Path, mirror: Mirror) -> None:
    models = tmp_path / "models"
    stale = models / f".staging-{DEFAULT_VOSK_MODEL}-abc123" / DEFAULT_VOSK_MODEL
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"x" * 1000)
    with make_client(5) as client:
        download_model(VOSK_AR_LINTO, models, client, base_url=mirror.url, options=QUIET)
    assert sorted(p.name for p in models.iterdir()) == [DEFAULT_VOSK_MODEL]
