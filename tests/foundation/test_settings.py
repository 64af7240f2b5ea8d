"""Settings: defaults from the guide, and a clear exit-2 line for every bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hana_voice.errors import SettingsError
from hana_voice.settings import GUIDE_EXAMPLE_SECRET, Settings

GOOD_SECRET = "x" * 40


def test_defaults_follow_the_deployment_guide() -> None:
    s = Settings.from_env({})
    assert s.log_level == "INFO"
    assert s.max_concurrent_sessions == 10
    assert s.rate_limit_per_minute == 60
    assert s.vosk_model_path == Path("models/vosk-model-ar-0.22-linto-1.1.0")
    assert s.tts_model_name == "tts_models/multilingual/multi-dataset/xtts_v2"
    assert s.sample_rate == 16000
    assert s.audio_format == "wav"
    assert s.processing_timeout == 30
    assert s.skip_model_loading is False
    assert s.maqsam_token is None
    assert s.voice_service_secret is None
    assert (s.host, s.port) == ("0.0.0.0", 8000)
    assert s.data_dir == Path("data")


def test_railway_volume_moves_data_and_models() -> None:
    s = Settings.from_env({"RAILWAY_VOLUME_MOUNT_PATH": "/data"})
    assert s.data_dir == Path("/data")
    assert s.models_dir == Path("/data/models")


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {
            "LOG_LEVEL": "debug",
            "MAX_CONCURRENT_SESSIONS": "3",
            "SKIP_MODEL_LOADING": "true",
            "SAMPLE_RATE": "8000",
            "PROCESSING_TIMEOUT": "2.5",
            "VOICE_SERVICE_SECRET": GOOD_SECRET,
            "ALLOWED_ORIGINS": "https://a.example, https://b.example/",
        }
    )
    assert s.log_level == "DEBUG"
    assert s.max_concurrent_sessions == 3
    assert s.skip_model_loading is True
    assert s.sample_rate == 8000
    assert s.processing_timeout == 2.5
    assert s.allowed_origins == ("https://a.example", "https://b.example")


def test_secrets_are_not_in_repr() -> None:
    s = Settings.from_env(
        {"VOICE_SERVICE_SECRET": GOOD_SECRET, "MAQSAM_TOKEN": "maqsam-tok-0123456"}
    )
    assert GOOD_SECRET not in repr(s)
    assert "maqsam-tok-0123456" not in repr(s)


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"MAX_CONCURRENT_SESSIONS": "ten"}, "MAX_CONCURRENT_SESSIONS", "not a whole number"),
        ({"MAX_CONCURRENT_SESSIONS": "0"}, "MAX_CONCURRENT_SESSIONS", "out of range"),
        ({"RATE_LIMIT_PER_MINUTE": "-1"}, "RATE_LIMIT_PER_MINUTE", "out of range"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "DEBUG, INFO"),
        ({"SAMPLE_RATE": "11025"}, "SAMPLE_RATE", "8000"),
        ({"AUDIO_FORMAT": "mp3"}, "AUDIO_FORMAT", "wav"),
        ({"PROCESSING_TIMEOUT": "soon"}, "PROCESSING_TIMEOUT", "not a number"),
        ({"SKIP_MODEL_LOADING": "maybe"}, "SKIP_MODEL_LOADING", "true/false"),
        ({"PORT": "70000"}, "PORT", "out of range"),
        ({"NEXTJS_API_URL": "ftp://x"}, "NEXTJS_API_URL", "http"),
    ],
)
def test_bad_values_name_variable_problem_and_accepted(
    env: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable
    assert fragment in str(info.value)
    assert "accepted" in str(info.value)


def test_model_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "model.zip"
    f.write_bytes(b"x")
    with pytest.raises(SettingsError, match=r"VOSK_MODEL_PATH.*not a directory"):
        Settings.from_env({"VOSK_MODEL_PATH": str(f)})


@pytest.mark.parametrize("secret", [GUIDE_EXAMPLE_SECRET, "short-secret"])
def test_weak_secrets_are_refused_without_echo(secret: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"VOICE_SERVICE_SECRET": secret})
    message = str(info.value)
    assert "openssl rand -base64 32" in message
    assert secret not in message


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hana_voice", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_value_exits_2_with_one_line() -> None:
    done = _run_cli({"MAX_CONCURRENT_SESSIONS": "lots"}, "check-config")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "MAX_CONCURRENT_SESSIONS" in lines[0]


def test_guide_secret_exits_2_without_echo() -> None:
    done = _run_cli({"VOICE_SERVICE_SECRET": GUIDE_EXAMPLE_SECRET}, "serve")
    assert done.returncode == 2
    assert GUIDE_EXAMPLE_SECRET not in done.stderr + done.stdout
    assert "openssl rand -base64 32" in done.stderr
