"""Secrets too short to be secret, plain-http hand-over to public hosts, and the service's
files readable by other users are refused or fixed (issue 11)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from hana_voice.errors import SettingsError
from hana_voice.guard.files import private_database
from hana_voice.settings import Settings, is_private_host
from tests.conftest import run_server
from tests.hardening.support import keypad_call
from tests.wsclient import connect

LONG = "x" * 40


@pytest.mark.parametrize(
    ("variable", "shortest"),
    [
        ("VOICE_SERVICE_SECRET", 32),
        ("JWT_SECRET", 32),
        ("MAQSAM_TOKEN", 16),
        ("TELEPHONY_TOKEN", 16),
        ("METRICS_TOKEN", 16),
    ],
)
def test_every_secret_has_a_minimum_length(variable: str, shortest: int) -> None:
    env = {"VOICE_SERVICE_SECRET": "s" * 40, variable: "a"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert "too short (1 characters)" in str(caught.value)
    assert Settings.from_env({**env, variable: "k" * shortest}) is not None
    with pytest.raises(SettingsError):
        Settings.from_env({**env, variable: "k" * (shortest - 1)})


def test_a_short_secret_exits_2_naming_it() -> None:
    env = {**os.environ, "JWT_SECRET": "short", "SKIP_MODEL_LOADING": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "hana_voice", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr and "short" not in result.stderr.replace("too short", "")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hana.example.com", True),
        ("http://127.0.0.1:3000", True),
        ("http://localhost:3000", True),
        ("http://10.1.2.3", True),
        ("http://192.168.1.5:3000", True),
        ("http://[::1]:3000", True),
        ("http://frontend:3000", True),
        ("http://hana-frontend.railway.internal:3000", True),
        ("http://hana.example.com", False),
        ("http://8.8.8.8", False),
    ],
)
def test_plain_http_hand_over_only_to_private_hosts(url: str, ok: bool) -> None:
    env = {"NEXTJS_API_URL": url}
    if ok:
        assert Settings.from_env(env).nextjs_api_url == url
        return
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == "NEXTJS_API_URL"
    allowed = Settings.from_env({**env, "ALLOW_INSECURE_NEXTJS": "true"})
    assert allowed.nextjs_api_url == url


def test_private_host_names() -> None:
    assert is_private_host("172.16.0.1") and not is_private_host("172.32.0.1")
    assert is_private_host("169.254.1.1")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    database = data / "hana.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").write_bytes(b"")
        os.chmod(f"{database}{suffix}", 0o644)
    os.chmod(data, 0o755)
    private_database(database)
    assert _mode(data) == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert _mode(Path(f"{database}{suffix}")) == 0o600


async def test_the_service_keeps_its_data_private(settings: Settings) -> None:
    old = os.umask(0o022)  # a typical umask: files world-readable by default
    try:
        async with run_server(settings) as server:
            with trio.fail_after(60):
                async with connect(server.ws_url + "/ws/healthcare-questionnaire") as client:
                    await keypad_call(client)
    finally:
        os.umask(old)
    data = settings.data_dir
    assert _mode(data) == 0o700
    files = [p for p in data.iterdir() if p.name.startswith(settings.database_path.name)]
    assert settings.database_path in files
    for path in files:
        assert _mode(path) == 0o600, path
