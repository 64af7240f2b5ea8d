"""Durable questionnaire results and their hand-over to the Hana front end.

``ResultStore`` (store.py) records each call as it goes, in SQLite under DATA_DIR or in
PostgreSQL shared by replicas (backend.py); ``OutboxWorker`` (outbox.py) delivers finished
calls; ``calls_blueprint`` (routes.py) serves them back. See docs/results.md.
"""

from hana_voice.results.backend import Backend, open_backend
from hana_voice.results.database import ResultDatabase
from hana_voice.results.outbox import OutboxWorker, RetryPolicy
from hana_voice.results.routes import calls_blueprint
from hana_voice.results.store import ResultStore
from hana_voice.results.tables import DELIVERY_STATES, FINAL_STATUSES

__all__ = [
    "DELIVERY_STATES",
    "FINAL_STATUSES",
    "Backend",
    "OutboxWorker",
    "ResultDatabase",
    "ResultStore",
    "RetryPolicy",
    "calls_blueprint",
    "open_backend",
]
