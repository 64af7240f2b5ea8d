"""The results-database settings (issue 13): validated with messages that name the variable
and never echo a URL that may hold a password."""

from __future__ import annotations

import pytest

from hana_voice.errors import SettingsError
from hana_voice.settings import Settings


def test_defaults_keep_sqlite() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert (settings.database_schema, settings.database_pool_min, settings.database_pool_size) == (
        "hana_voice",
        1,
        4,
    )
    assert (settings.database_timeout, settings.outbox_lease_seconds) == (3.0, 60.0)
    assert settings.replica_id is None


def test_postgres_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://hana:pw@db.internal:5432/railway",
            "DATABASE_SCHEMA": "voice_2",
            "DATABASE_POOL_MIN": "0",
            "DATABASE_POOL_SIZE": "8",
            "DATABASE_TIMEOUT": "1.5",
            "OUTBOX_LEASE_SECONDS": "30",
            "RAILWAY_REPLICA_ID": "rep-1",
        }
    )
    assert settings.database_url == "postgres://hana:pw@db.internal:5432/railway"
    assert (settings.database_schema, settings.database_pool_min) == ("voice_2", 0)
    assert (settings.database_pool_size, settings.database_timeout) == (8, 1.5)
    assert (settings.outbox_lease_seconds, settings.replica_id) == (30.0, "rep-1")
    assert "pw" not in repr(settings)
    explicit = Settings.from_env({"RAILWAY_REPLICA_ID": "rep-1", "REPLICA_ID": "mine"})
    assert explicit.replica_id == "mine"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://u:secret-pw@h/db"}, "DATABASE_URL"),
        ({"DATABASE_SCHEMA": "Hana-Voice"}, "DATABASE_SCHEMA"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE"),
        ({"DATABASE_POOL_MIN": "5", "DATABASE_POOL_SIZE": "4"}, "DATABASE_POOL_MIN"),
        ({"DATABASE_TIMEOUT": "0"}, "DATABASE_TIMEOUT"),
        ({"OUTBOX_LEASE_SECONDS": "soon"}, "OUTBOX_LEASE_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert "secret-pw" not in str(caught.value)
