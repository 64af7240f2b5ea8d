"""Structured JSON logs on stdout.

Every record is one JSON object per line: time, level, logger, event, then the fields passed
with :func:`log_event`. Only ids, event names, codes and timings go in fields: never
transcripts, answers, phone numbers or secrets (patient data). Field values are not scrubbed
here on purpose: a scrubber gives a false sense of safety; callers simply never pass them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_FIELDS = "hana_fields"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, _FIELDS, None)
        if fields:
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages of library code may quote input data.
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    """Send every log record to stdout as JSON at ``level``; quiet noisy libraries."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Hypercorn's access log would print query strings, which may carry ?token=...
    logging.getLogger("hypercorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def log_event(
    logger: logging.Logger, level: int, event: str, exc_info: bool = False, **fields: Any
) -> None:
    """Log ``event`` with structured ``fields`` (ids, codes and timings only)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS: fields}, exc_info=exc_info)
