"""A model download's progress as /health and /metrics show it.

:class:`DownloadStatus` is written by the download thread (plain attribute writes, each atomic
under the GIL) and read by the event loop when /health or /metrics is asked for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hana_voice.models.manifest import RemoteFile

STATES = (
    "pending",  # not started yet
    "waiting",  # another process holds the model's lock
    "downloading",
    "installing",  # unpacking and moving into place
    "retrying",  # the last attempt failed; the next one is scheduled
    "installed",  # done by this process, or found installed (by another)
    "unavailable",  # cannot be downloaded (an unknown VOSK_MODEL_PATH name)
)
#: Bytes per second measured over at least this many seconds.
SPEED_WINDOW = 1.0


@dataclass
class DownloadStatus:
    """One model's download as /health shows it. Written by the download thread."""

    model: str
    kind: str
    target: str
    state: str = "pending"
    file: str | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    speed: float = 0.0
    attempts: int = 0
    failures: int = 0
    last_error: str | None = None
    next_attempt_at: float | None = None
    started_at: float | None = None
    seconds: float | None = None
    _window: tuple[float, int] = (0.0, 0)
    _earlier_files: int = 0
    _files: tuple[RemoteFile, ...] = ()
    _estimates: dict[str, int] = field(default_factory=dict)

    @property
    def percent(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(100.0, 100.0 * self.bytes_done / self.bytes_total)

    def as_dict(self) -> dict[str, Any]:
        wait = None
        if self.state == "retrying" and self.next_attempt_at is not None:
            wait = max(0.0, round(self.next_attempt_at - time.monotonic(), 1))
        percent = self.percent
        return {
            "model": self.model,
            "kind": self.kind,
            "target": self.target,
            "state": self.state,
            "file": self.file,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "percent": None if percent is None else round(percent, 1),
            "speed_bytes_per_second": round(self.speed),
            "attempts": self.attempts,
            "failures": self.failures,
            "last_error": self.last_error,
            "next_attempt_in_seconds": wait,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
        }

    # -- called from the download thread

    def begin_file(self, index: int, file: RemoteFile, files: tuple[RemoteFile, ...]) -> None:
        self.file = file.name
        self._files = files
        self._earlier_files = sum(self._size_of(f) for f in files[:index])

    def progress(self, done_in_file: int, total_in_file: int | None) -> None:
        if total_in_file is not None and self.file is not None:
            self._estimates[self.file] = total_in_file
        self.bytes_done = self._earlier_files + done_in_file
        self.bytes_total = sum(self._size_of(f) for f in self._files) or None
        now = time.monotonic()
        since, then = self._window
        if since == 0.0 or then > self.bytes_done:
            self._window = (now, self.bytes_done)
        elif now - since >= SPEED_WINDOW:
            self.speed = (self.bytes_done - then) / (now - since)
            self._window = (now, self.bytes_done)

    def _size_of(self, file: RemoteFile) -> int:
        return self._estimates.get(file.name) or _approx_bytes(file)


def _approx_bytes(file: RemoteFile) -> int:
    """The manifest's exact size, else its rough one ("1.3 GB", "360 kB"), for the percentage."""
    if file.size is not None:
        return file.size
    number, _, unit = file.approx_size.partition(" ")
    scale = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}.get(unit, 0)
    try:
        return math.floor(float(number) * scale)
    except ValueError:
        return 0


def redact(url: str) -> str:
    """A URL without its user name and password, for logs and /health."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def metric_families(
    statuses: dict[str, DownloadStatus], engines: dict[str, Any]
) -> Iterator[Metric]:
    """The download gauges of /metrics, and the engines' switch counters."""
    done = GaugeMetricFamily(
        "hana_model_download_bytes", "Bytes of the model downloaded", labels=["model"]
    )
    total = GaugeMetricFamily(
        "hana_model_download_size_bytes", "Size of the model's files", labels=["model"]
    )
    ratio = GaugeMetricFamily(
        "hana_model_download_progress_ratio", "Fraction downloaded (0-1)", labels=["model"]
    )
    speed = GaugeMetricFamily(
        "hana_model_download_speed_bytes_per_second", "Download speed", labels=["model"]
    )
    state = GaugeMetricFamily(
        "hana_model_download_state", "1 for the download's state", labels=["model", "state"]
    )
    failures = CounterMetricFamily(
        "hana_model_download_failures", "Failed download attempts", labels=["model"]
    )
    for name, s in statuses.items():
        done.add_metric([name], s.bytes_done)
        if s.bytes_total is not None:
            total.add_metric([name], s.bytes_total)
        percent = s.percent
        if percent is not None:
            ratio.add_metric([name], percent / 100)
        speed.add_metric([name], s.speed)
        for each in STATES:
            state.add_metric([name, each], 1.0 if s.state == each else 0.0)
        failures.add_metric([name], s.failures)
    switches = CounterMetricFamily(
        "hana_engine_switches", "Engines switched to while serving", labels=["kind"]
    )
    for kind, slot in engines.items():
        if kind in ("stt", "tts"):
            switches.add_metric([kind], slot["switches"])
    yield from (done, total, ratio, speed, state, failures, switches)
