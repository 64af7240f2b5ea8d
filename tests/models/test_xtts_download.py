"""The ``tts`` path end to end: a started service downloads an XTTS model from the mirror and
switches from espeak-ng to it without a restart.

The model is the tiny random-weight checkpoint of tests/engines/xtts_tiny.py (the real XTTS v2
weights cannot be fetched here), served under the six file names of the manifest. The tiny
generator writes config.json, vocab.json, model.pth and speakers_xtts.pth; ``dvae.pth`` and
``mel_stats.pth``, which inference does not read, are served as small stand-ins so the
download is the manifest's whole file set. Like tests/engines/test_xtts.py this needs torch
(bin/install-xtts) and fails, never skips, without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

try:
    import torch  # noqa: F401  # proves the extra is installed
except ImportError as exc:  # fail, never skip: CI must test XTTS
    raise ImportError(f"XTTS tests need torch ({exc}); run bin/install-xtts") from exc

from hana_voice.engines.async_engines import synthesize_stream
from hana_voice.engines.manager import Loaders
from hana_voice.models.manifest import XTTS_V2
from hana_voice.settings import Settings
from tests.conftest import run_server
from tests.engines.xtts_tiny import TINY_SPEAKER, write_tiny_xtts
from tests.models.conftest import auto_settings
from tests.models.mirror import Mirror, serve_mirror

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tiny_xtts_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = write_tiny_xtts(tmp_path_factory.mktemp("xtts-mirror"))
    for stand_in in ("dvae.pth", "mel_stats.pth"):
        (folder / stand_in).write_bytes(b"not read by inference\n")
    files = {file.name: folder / file.name for file in XTTS_V2.files}
    assert all(path.is_file() for path in files.values())
    return files


@pytest.fixture
def xtts_mirror(tiny_xtts_files: dict[str, Path]) -> Iterator[Mirror]:
    with serve_mirror(Mirror(files=tiny_xtts_files)) as mirror:
        yield mirror


async def test_service_downloads_xtts_and_switches_from_espeak(
    settings: Settings, xtts_mirror: Mirror
) -> None:
    xtts_mirror.errors = 1  # one 500 on the way, retried
    s = auto_settings(
        settings,
        xtts_mirror.url,
        models_auto_download="tts",
        tts_engine="auto",
        tts_device="cpu",
        tts_speaker=TINY_SPEAKER,
    )
    async with run_server(s, Loaders()) as server, server.client() as client:
        engines = server.services.engines
        with trio.fail_after(30):
            await engines.loaded.wait()
        before = engines.snapshot()
        assert before.tts is not None and before.tts.name.startswith("espeak")
        with trio.fail_after(180):
            while engines.tts_slot.name != "xtts":
                await trio.sleep(0.1)
        body = (await client.get("/health")).json()
        assert body["engines"]["tts"]["name"] == "xtts"
        assert body["engines"]["tts"]["state"] == "loaded"
        assert body["engines"]["tts"]["switches"] == 1
        download = body["models"]["downloads"][XTTS_V2.name]
        assert download["state"] == "installed" and download["failures"] == 1
        assert download["percent"] == 100.0
        assert before.tts is not engines.tts, "a call in progress keeps espeak"
        tts = engines.snapshot().tts
        assert tts is not None and tts.sample_rate == 24000
        pcm = b""
        async with synthesize_stream(tts, server.services.runner, "مرحبا") as chunks:
            async for chunk in chunks:
                pcm += chunk
        assert len(pcm) > 0 and len(pcm) % 2 == 0
