"""Fixtures for the model tests: the real small model packed as the production one, a mirror."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hana_voice.settings import DEFAULT_VOSK_MODEL, Settings
from tests.models.mirror import Mirror, ko_model_zip, serve_mirror

ARCHIVE = f"{DEFAULT_VOSK_MODEL}.zip"


@pytest.fixture(scope="session")
def ko_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Korean Vosk model zipped under the production model's name (built once, ~3 s)."""
    return ko_model_zip(tmp_path_factory.mktemp("mirror"))


@pytest.fixture
def mirror(ko_zip: Path) -> Iterator[Mirror]:
    with serve_mirror(Mirror(files={ARCHIVE: ko_zip})) as running:
        yield running


def auto_settings(settings: Settings, mirror_url: str, **changes: object) -> Settings:
    """Settings of a service that downloads the speech model from ``mirror_url``."""
    values: dict[str, object] = {
        "skip_model_loading": False,
        "models_auto_download": "stt",
        "models_mirror_url": mirror_url,
        "vosk_model_path": settings.models_dir / DEFAULT_VOSK_MODEL,
        "models_watch_seconds": 0.0,
        "tts_engine": "espeak",
    }
    values.update(changes)
    return settings.with_overrides(**values)
