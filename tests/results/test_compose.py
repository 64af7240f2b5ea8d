"""compose.yaml (PostgreSQL, two replicas, a load balancer): docker does not run here, so its
structure is checked, and every replica's environment is validated by the real Settings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hana_voice.settings import Settings

REPO = Path(__file__).resolve().parents[2]
REPLICAS = ("voice-a", "voice-b")
#: Values for the variables compose takes from the operator's shell.
SHELL = {"VOICE_SERVICE_SECRET": "s" * 40, "JWT_SECRET": "j" * 40, "NEXTJS_API_URL": ""}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def _interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME:?message}`` with the values above."""
    return re.sub(r"\$\{(\w+)(?::[-?][^}]*)?\}", lambda m: SHELL[m.group(1)], value)


class _Recording(Mapping[str, str]):
    """An environment that remembers every name Settings.from_env asks for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    return {name: _interpolate(str(value)) for name, value in service["environment"].items()}


def test_services_are_postgres_two_replicas_and_a_load_balancer() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "models", *REPLICAS, "lb"}
    for name in REPLICAS:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["models"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["postgres"]


def test_every_replica_variable_is_a_setting_and_validates() -> None:
    services = _compose()["services"]
    known = _Recording({})
    Settings.from_env(known)
    for name in REPLICAS:
        env = _environment(services[name])
        unknown = set(env) - known.asked
        assert not unknown, f"{name} sets variables the service never reads: {unknown}"
        settings = Settings.from_env(env)
        assert settings.database_url is not None
        assert settings.replica_id == name


def test_replicas_share_the_database_and_keep_their_own_data() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]["environment"]
    urls = {_environment(services[name])["DATABASE_URL"] for name in REPLICAS}
    [url] = urls
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("postgres", 5432)
    assert (parts.username, parts.password, parts.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    data_volumes = []
    for name in REPLICAS:
        env = _environment(services[name])
        mounts = dict(volume.split(":", 1)[::-1] for volume in services[name]["volumes"])
        assert mounts[env["MODELS_DIR"] + ":ro"] == "models"
        data_volumes.append(mounts[env["DATA_DIR"]])
    assert len(set(data_volumes)) == len(REPLICAS), "each replica has its own DATA_DIR"
    declared = set(_compose()["volumes"])
    assert {"postgres", "models", *data_volumes} <= declared


def test_the_load_balancer_reaches_both_replicas_with_websockets() -> None:
    compose = _compose()
    services = compose["services"]
    config = compose["configs"]["nginx"]["content"]
    for name in REPLICAS:
        port = _environment(services[name])["PORT"]
        assert f"server {name}:{port}" in config
    assert "proxy_set_header Upgrade $$http_upgrade;" in config
    assert "proxy_http_version 1.1;" in config
    [published] = services["lb"]["ports"]
    assert published.endswith(":80")
    assert services["lb"]["configs"][0]["source"] == "nginx"


def test_the_image_serves_the_cli() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-dev" in dockerfile
    assert 'CMD ["hana-voice", "serve"]' in dockerfile
    assert _compose()["services"]["models"]["command"][:3] == ["hana-voice", "models", "download"]
