"""One store interface, two backends: the blocking methods ``ResultStore`` runs in threads.

- :class:`~hana_voice.results.database.ResultDatabase`: SQLite under ``DATA_DIR``, the
  embedded default, one file per replica.
- :class:`~hana_voice.results.postgres.PostgresDatabase`: PostgreSQL at ``DATABASE_URL``,
  shared by every replica, in the schema ``DATABASE_SCHEMA``.

:func:`open_backend` picks one from the settings and brings its schema up to date
(migrations.py). Each method is one transaction; failures raise StoreError, misuse ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from hana_voice.results.database import Claim, ResultDatabase
from hana_voice.results.tables import Write
from hana_voice.settings import Settings


class Backend(Protocol):
    """What both databases provide (see database.py for each method's contract)."""

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""

    @property
    def max_size(self) -> int:
        """How many threads may use it at once."""

    def close(self) -> None: ...

    def schema_version(self) -> int: ...

    def apply(self, writes: Sequence[Write], now: float) -> list[str]: ...

    def recover_interrupted(
        self,
        now: float,
        *,
        replica_id: str = "",
        alive_since: float | None = None,
        restarted: bool = False,
    ) -> list[str]: ...

    def heartbeat(self, replica_id: str, now: float, forget_before: float) -> None: ...

    def get_call(self, session_id: str) -> dict[str, Any] | None: ...

    def claim_delivery(
        self, worker_id: str, now: float, lease_seconds: float, due_by: float | None = None
    ) -> Claim | None: ...

    def settle(
        self,
        claim: Claim,
        worker_id: str,
        state: Literal["delivered", "failed", "pending"],
        now: float,
        *,
        status_code: int | None = None,
        error: str | None = None,
        next_attempt_at: float | None = None,
    ) -> bool: ...

    def set_config_state(self, configured: bool) -> int: ...

    def next_due_at(self) -> float | None: ...

    def backlog(self) -> dict[str, int]: ...


def open_backend(settings: Settings, **sqlite_options: Any) -> Backend:
    """The backend the settings name, migrated. Blocking; raises StoreError.

    A schema newer than this code stops here with one line (migrations.too_new).
    """
    url = settings.database_url
    if url is None:
        return ResultDatabase(settings.database_path, **sqlite_options)
    from hana_voice.results.postgres import PostgresDatabase

    db = PostgresDatabase(
        url,
        schema=settings.database_schema,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_size,
        timeout=settings.database_timeout,
    )
    try:
        db.migrate()
    except BaseException:
        db.close()
        raise
    return db


def describe(settings: Settings) -> Mapping[str, str]:
    """Where results are kept, for logs and /health (no credentials)."""
    if settings.database_url is None:
        return {"backend": "sqlite", "path": str(settings.database_path)}
    return {"backend": "postgresql", "schema": settings.database_schema}
