"""The background downloader against a local mirror serving the real small model.

The mirror serves the Korean Vosk model zipped under the production model's name; the engines
are fakes whose speech-to-text loader checks the installed layout as the Vosk loader does, so
these tests cover the download, the install and the switch without loading Kaldi.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, cast

import pytest
import trio

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.engines.manager import EngineManager, Loaders
from hana_voice.engines.vosk_stt import check_model_dir
from hana_voice.errors import ModelMissingError
from hana_voice.models.auto import AutoDownloader
from hana_voice.models.lock import DOWNLOADS
from hana_voice.models.manifest import XTTS_V2
from hana_voice.models.progress import redact
from hana_voice.settings import DEFAULT_VOSK_MODEL, Settings
from tests.models.conftest import ARCHIVE, auto_settings
from tests.models.mirror import Mirror, serve_mirror, unreachable_url


def fake_loaders(stt: FakeSpeechToText | None = None, xtts: Any = None) -> Loaders:
    """Fakes; the speech-to-text one refuses an incomplete model like the Vosk loader."""
    recogniser = stt or FakeSpeechToText()

    def load_stt(settings: Settings) -> Any:
        check_model_dir(settings.vosk_model_path)
        return recogniser

    def load_xtts(settings: Settings) -> Any:
        from hana_voice.engines.manager import xtts_dir

        if not (xtts_dir(settings) / "model.pth").is_file():
            raise ModelMissingError("no XTTS model")
        return xtts

    return Loaders(
        stt=cast(Any, load_stt),
        espeak=cast(Any, lambda s: FakeTextToSpeech()),
        xtts=cast(Any, load_xtts),
    )


async def started(settings: Settings, loaders: Loaders) -> EngineManager:
    engines = EngineManager(settings, loaders)
    await engines.load_all()
    return engines


async def download(settings: Settings, engines: EngineManager) -> AutoDownloader:
    downloader = AutoDownloader(settings, engines, first_delay=0.05, read_timeout=2.0)
    with trio.fail_after(90):
        await downloader.run()
    return downloader


async def test_downloads_installs_and_switches(
    settings: Settings, mirror: Mirror, ko_zip: Path
) -> None:
    s = auto_settings(settings, mirror.url)
    stt = FakeSpeechToText()
    engines = await started(s, fake_loaders(stt))
    assert engines.snapshot().stt is None and engines.stt_slot.state == "missing"
    downloader = await download(s, engines)
    status = downloader.health()["downloads"][DEFAULT_VOSK_MODEL]
    size = (await trio.Path(ko_zip).stat()).st_size
    assert status["state"] == "installed"
    assert status["bytes_done"] == status["bytes_total"] == size
    assert status["percent"] == 100.0
    assert status["failures"] == 0 and status["last_error"] is None
    assert (s.vosk_model_path / "graph" / "HCLr.fst").is_file()
    assert not (s.models_dir / DOWNLOADS).exists(), "no .part, lock or archive left"
    assert engines.stt is stt and engines.stt_slot.state == "loaded"
    assert engines.stt_slot.switches == 1
    assert mirror.offsets(ARCHIVE) == [0]


async def test_http_500_is_retried_with_back_off(settings: Settings, mirror: Mirror) -> None:
    mirror.errors = 2
    s = auto_settings(settings, mirror.url)
    engines = await started(s, fake_loaders())
    downloader = await download(s, engines)
    status = downloader.status[DEFAULT_VOSK_MODEL]
    assert (status.state, status.failures, status.attempts) == ("installed", 2, 3)
    assert engines.stt is not None


async def test_dropped_connection_resumes_where_it_stopped(
    settings: Settings, mirror: Mirror
) -> None:
    mirror.drops, mirror.drop_after = 2, 7_000_000
    s = auto_settings(settings, mirror.url)
    engines = await started(s, fake_loaders())
    downloader = await download(s, engines)
    assert downloader.status[DEFAULT_VOSK_MODEL].failures == 2
    assert mirror.offsets(ARCHIVE) == [0, 7_000_000, 14_000_000]
    assert engines.stt is not None


async def test_corrupt_archive_is_refused_then_fetched_afresh(
    settings: Settings, mirror: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    mirror.corrupt = 1
    s = auto_settings(settings, mirror.url)
    engines = await started(s, fake_loaders())
    with caplog.at_level(logging.WARNING, "hana_voice.models.auto"):
        downloader = await download(s, engines)
    failed = [r for r in caplog.records if r.getMessage() == "models.download_failed"]
    assert len(failed) == 1
    assert "not a valid zip archive" in str(failed[0].__dict__)
    assert downloader.status[DEFAULT_VOSK_MODEL].state == "installed"
    assert mirror.offsets(ARCHIVE) == [0, 0], "the bad archive was deleted, not resumed"
    assert engines.stt is not None


async def test_unreachable_mirror_is_retried_and_reported(settings: Settings) -> None:
    s = auto_settings(settings, unreachable_url())
    engines = await started(s, fake_loaders())
    downloader = AutoDownloader(s, engines, first_delay=0.05, read_timeout=2.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(downloader.run)
        status = downloader.status[DEFAULT_VOSK_MODEL]
        with trio.fail_after(20):
            while status.failures < 3:
                await trio.sleep(0.02)
        report = downloader.health()["downloads"][DEFAULT_VOSK_MODEL]
        assert report["state"] in ("retrying", "downloading")
        assert "ConnectError" in report["last_error"]
        nursery.cancel_scope.cancel()
    assert engines.stt is None and engines.stt_slot.state == "missing"


async def test_part_file_left_by_a_killed_process_is_resumed(
    settings: Settings, mirror: Mirror, ko_zip: Path
) -> None:
    part = s_part = settings.models_dir / DOWNLOADS / DEFAULT_VOSK_MODEL / f"{ARCHIVE}.part"
    s_part.parent.mkdir(parents=True)
    with ko_zip.open("rb") as fh:
        part.write_bytes(fh.read(12_345_678))
    s = auto_settings(settings, mirror.url)
    engines = await started(s, fake_loaders())
    await download(s, engines)
    assert mirror.offsets(ARCHIVE) == [12_345_678]
    assert engines.stt is not None


async def test_two_downloaders_sharing_models_dir_fetch_once(
    settings: Settings, mirror: Mirror
) -> None:
    """Two services (separate lock file descriptors, as in two processes) on one MODELS_DIR."""
    mirror.rate = 40e6  # about 2.5 s for the archive: time for the other to find the lock
    s = auto_settings(settings, mirror.url)
    first = await started(s, fake_loaders())
    second = await started(s, fake_loaders())
    downloaders = [
        AutoDownloader(s, e, first_delay=0.05, read_timeout=2.0) for e in (first, second)
    ]
    seen: set[str] = set()

    async def watch() -> None:
        while True:
            seen.update(d.status[DEFAULT_VOSK_MODEL].state for d in downloaders)
            await trio.sleep(0.01)

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            async with trio.open_nursery() as both:
                for downloader in downloaders:
                    both.start_soon(downloader.run)
            nursery.cancel_scope.cancel()
    assert mirror.offsets(ARCHIVE) == [0], "one download, never two"
    assert "waiting" in seen
    assert first.stt is not None and second.stt is not None


async def test_tts_download_switches_from_espeak_to_xtts(settings: Settings) -> None:
    """The XTTS path: plain files from the mirror, then espeak gives way to the new engine."""
    folder = settings.data_dir.parent / "xtts-mirror"
    folder.mkdir(parents=True)
    files = {}
    for file in XTTS_V2.files:
        path = folder / file.name
        path.write_bytes(os.urandom(300_000 if file.name == "model.pth" else 2_000))
        files[file.name] = path
    xtts = FakeTextToSpeech()
    with serve_mirror(Mirror(files=files)) as xtts_mirror:
        s = auto_settings(settings, xtts_mirror.url, models_auto_download="tts", tts_engine="auto")
        engines = await started(s, fake_loaders(xtts=xtts))
        ready: list[Any] = []
        engines.on_tts_ready.append(ready.append)
        assert engines.tts_slot.name == "espeak" and engines.tts is not None
        before = engines.snapshot()
        downloader = await download(s, engines)
    status = downloader.status[XTTS_V2.name]
    assert status.state == "installed"
    assert status.bytes_done == status.bytes_total == 300_000 + 5 * 2_000
    assert engines.tts is xtts and engines.tts_slot.name == "xtts"
    assert engines.tts_slot.switches == 1 and engines.tts_preferred is None
    assert ready == [xtts], "the prompt cache warms for the new voice"
    assert before.tts is not xtts, "a call in progress keeps its voice"


def test_mirror_credentials_never_shown() -> None:
    assert redact("https://user:pw@example.org:8443/models") == "https://example.org:8443/models"
    assert redact("https://example.org/models") == "https://example.org/models"
