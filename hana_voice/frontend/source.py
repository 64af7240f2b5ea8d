"""Templates read from the front end's database (``template_versions``), cached and refreshed.

Database access is blocking psycopg (sync API) run in worker threads, never on the event loop,
through a small bounded pool (:class:`ConnectionSlots`): at most TEMPLATES_POOL_SIZE threads
and connections at once, each connection read-only with a statement timeout. The pool is our
own rather than psycopg-pool's because that one waits its whole timeout on a refused
connection, which would hold every call's start for TEMPLATES_TIMEOUT while the database is
down; this one fails at once with the driver's error.

The cache holds every published, well-formed template, refreshed every
TEMPLATES_REFRESH_SECONDS. A template id the cache does not hold is looked up when a call
starts, so a template published a moment ago runs at once. While the database is unreachable
the templates already cached keep running (their results are checked by the front end's route
when they arrive); any other template id gets a clear error, and /health says ``degraded``.

Cancellation: a lookup cancelled with its call abandons its worker thread, which finishes its
query (bounded by the statement timeout) and returns its connection to the pool.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import trio

from hana_voice.errors import HanaError, TemplateError
from hana_voice.frontend.convert import TemplateRow, TemplateTexts, canonical_id, convert
from hana_voice.logs import log_event
from hana_voice.questionnaire.template import Questionnaire

log = logging.getLogger(__name__)

T = TypeVar("T")

_COLUMNS = "template_id::text, version, name, name_ar, is_published, questions_json"
_ALL_PUBLISHED = f"SELECT {_COLUMNS} FROM template_versions WHERE is_published"
_ONE = f"SELECT {_COLUMNS} FROM template_versions WHERE template_id = %s::uuid"


class TemplateUnavailable(HanaError):
    """A call asked for a front-end template that cannot be run; ``code`` says why."""

    def __init__(self, template_id: str, code: str, message: str) -> None:
        self.template_id = template_id
        self.code = code
        super().__init__(message)


class SourceError(HanaError):
    """The template database could not be reached or read."""

    code = "templates_unavailable"


def _describe(exc: BaseException) -> str:
    """One line about a driver error, without the URL (the password may be in it)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:200]


class ConnectionSlots:
    """A small bounded pool of read-only connections, used from worker threads only."""

    def __init__(self, url: str, size: int, timeout: float) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        ms = int(self.timeout * 1000)
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, math.ceil(self.timeout)),
            application_name="hana-voice-templates",
            options=f"-c statement_timeout={ms} -c default_transaction_read_only=on",
        )

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` on a connection (blocking; call from a worker thread).

        A pooled connection that fails with a connection error (the server restarted) is
        dropped and the work is tried once more on a fresh connection.
        """
        for attempt in (1, 2):
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            fresh = conn is None
            try:
                if conn is None:
                    conn = self._connect()
                result = work(conn)
            except psycopg.OperationalError as exc:
                if conn is not None:
                    conn.close()
                if fresh or attempt == 2:
                    raise SourceError(_describe(exc)) from None
                continue
            except psycopg.Error as exc:
                if conn is not None:
                    conn.close()
                raise SourceError(_describe(exc)) from None
            self._give_back(conn)
            return result
        raise AssertionError("unreachable")

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.size and not conn.closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _rows(
    conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()
) -> list[TemplateRow]:
    return [
        TemplateRow(
            template_id=str(r[0]),
            version=r[1],
            name=r[2],
            name_ar=r[3],
            is_published=bool(r[4]),
            questions_json=r[5],
        )
        for r in conn.execute(sql.encode(), params).fetchall()
    ]


class TemplateSource:
    """The front end's templates for calls: a refreshed cache plus lookups at call start."""

    def __init__(
        self,
        url: str,
        texts: TemplateTexts | None = None,
        *,
        refresh_seconds: float = 60.0,
        pool_size: int = 2,
        timeout: float = 5.0,
    ) -> None:
        self.texts = texts or TemplateTexts()
        self.refresh_seconds = refresh_seconds
        self.slots = ConnectionSlots(url, pool_size, timeout)
        self.limiter = trio.CapacityLimiter(pool_size)
        self.state = "connecting"
        self.error: str | None = None
        self.last_refresh: float | None = None
        self.refreshed = trio.Event()
        self._cache: dict[str, Questionnaire] = {}
        self._refused: dict[str, TemplateError] = {}
        self._logged: set[tuple[str, str, str]] = set()

    # ------------------------------------------------------------------ database

    async def _query(self, sql: str, *params: Any) -> list[TemplateRow]:
        def work() -> list[TemplateRow]:
            return self.slots.run(lambda conn: _rows(conn, sql, params))

        try:
            rows = await trio.to_thread.run_sync(work, limiter=self.limiter, abandon_on_cancel=True)
        except SourceError as exc:
            self._unreachable(str(exc))
            raise
        self._reachable()
        return rows

    def _unreachable(self, error: str) -> None:
        if self.state != "unreachable":
            log_event(log, logging.WARNING, "templates.unreachable", error=error)
        self.state, self.error = "unreachable", error

    def _reachable(self) -> None:
        if self.state == "unreachable":
            log_event(log, logging.INFO, "templates.reachable")
        self.state, self.error = "ok", None

    # ------------------------------------------------------------------ cache

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Refresh forever. Started at once: the service never waits for the database."""
        task_status.started()
        try:
            while True:
                # A failure is in the state and one log line; the next refresh retries.
                with contextlib.suppress(SourceError):
                    await self.refresh()
                await trio.sleep(self.refresh_seconds)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.slots.close)

    async def refresh(self) -> None:
        """Read every published template; raise SourceError when the database is unreachable."""
        started = time.perf_counter()
        try:
            rows = await self._query(_ALL_PUBLISHED)
        finally:
            self.refreshed.set()
        cache: dict[str, Questionnaire] = {}
        refused: dict[str, TemplateError] = {}
        for row in rows:
            try:
                cache[row.template_id] = convert(row, self.texts)
            except TemplateError as exc:
                refused[row.template_id] = exc
                self._log_refused(row.template_id, exc)
        changed = set(cache) != set(self._cache) or set(refused) != set(self._refused)
        self._cache, self._refused = cache, refused
        self.last_refresh = time.time()
        if changed:
            log_event(
                log,
                logging.INFO,
                "templates.refreshed",
                templates=len(cache),
                refused=len(refused),
                seconds=round(time.perf_counter() - started, 3),
            )

    def _log_refused(self, template_id: str, exc: TemplateError) -> None:
        # One line per template and problem, not one per refresh.
        key = (template_id, exc.field, exc.problem)
        if key not in self._logged:
            self._logged.add(key)
            log_event(
                log,
                logging.ERROR,
                "template.refused",
                template_id=template_id,
                field=exc.field,
                problem=exc.problem,
            )

    async def get(self, template_id: str) -> Questionnaire:
        """The questionnaire of a published template; raise TemplateUnavailable otherwise."""
        wanted = canonical_id(template_id)
        if wanted is None:
            raise TemplateUnavailable(
                template_id[:64], "template_unknown", "template id is not a uuid"
            )
        found = self._cache.get(wanted)
        if found is not None:
            return found
        try:
            rows = await self._query(_ONE, wanted)
        except SourceError:
            raise TemplateUnavailable(
                wanted,
                "templates_unavailable",
                f"template {wanted}: the template database is unreachable",
            ) from None
        if not rows:
            raise TemplateUnavailable(wanted, "template_unknown", f"template {wanted}: not found")
        row = rows[0]
        if not row.is_published:
            raise TemplateUnavailable(
                wanted, "template_unpublished", f"template {wanted}: not published"
            )
        try:
            questionnaire = convert(row, self.texts)
        except TemplateError as exc:
            self._log_refused(wanted, exc)
            raise TemplateUnavailable(
                wanted, "template_malformed", f"template {wanted}: {exc.field}: {exc.problem}"
            ) from None
        self._cache[wanted] = questionnaire
        return questionnaire

    def cached(self, template_id: str) -> Questionnaire | None:
        return self._cache.get(template_id)

    def health(self) -> dict[str, Any]:
        """The state /health shows: ok / unreachable / connecting, counts, last refresh."""
        body: dict[str, Any] = {
            "state": self.state,
            "templates": len(self._cache),
            "refused": len(self._refused),
            "refresh_seconds": self.refresh_seconds,
            "last_refresh": None
            if self.last_refresh is None
            else datetime.fromtimestamp(self.last_refresh, UTC).isoformat(timespec="seconds"),
        }
        if self.error is not None:
            body["error"] = self.error
        return body
