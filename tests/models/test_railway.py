"""railway.json spells out Option B: its start command turns on the speech model's download
unless the operator set MODELS_AUTO_DOWNLOAD (``none`` turns it off)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hana_voice.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def start_env(value: str | None) -> str:
    """What MODELS_AUTO_DOWNLOAD the start command hands to ``uv`` (run by a shell function)."""
    start = json.loads((ROOT / "railway.json").read_text())["deploy"]["startCommand"]
    env = {k: v for k, v in os.environ.items() if k != "MODELS_AUTO_DOWNLOAD"}
    env["PORT"] = "8000"
    if value is not None:
        env["MODELS_AUTO_DOWNLOAD"] = value
    script = 'uv() { printf %s "$MODELS_AUTO_DOWNLOAD"; }\n' + start
    return subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=10
    ).stdout


@pytest.mark.parametrize(("given", "used"), [(None, "stt"), ("none", "none"), ("all", "all")])
def test_start_command_defaults_to_downloading_the_speech_model(
    given: str | None, used: str
) -> None:
    assert start_env(given) == used
    assert Settings.from_env({"MODELS_AUTO_DOWNLOAD": used}).models_auto_download == used


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("MODELS_AUTO_DOWNLOAD", "yes", "none, stt, tts, all"),
        ("MODELS_MIRROR_URL", "ftp://x", "http"),
        ("MODELS_WATCH_SECONDS", "-1", "from 0"),
        ("MODELS_RETRY_MAX_SECONDS", "0", "from 1"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str, accepted: str) -> None:
    from hana_voice.errors import SettingsError

    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value) and accepted in str(info.value)
