"""Template lookup at call start: cached, uncached (pooled connection) and uncached (new
connection), p50/p99 and CPU per lookup.

Run: .venv/bin/python bench/bench_templates.py [--cached N] [--uncached N] [--cold N]

Starts a private PostgreSQL (tests/postgres.py: Debian's server binaries, a throw-away cluster
on a free port), loads the front end's contract tables with the seeded template, and times
``choose_questionnaire`` as a call's start runs it:

- cached: the template is in the source's cache (every call after the first refresh);
- uncached: not in the cache (a template published since the last refresh): one query through
  a pooled connection in a worker thread, then the conversion;
- cold: uncached and no pooled connection either (the first call after an idle restart):
  a new connection (TCP, start-up, read-only session settings) as well.

The wall-clock figures include the thread hop; the CPU figure is this process's CPU time per
lookup (the server's is not counted), the more stable measure on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hana_voice.events import CallStarted  # after the path fix above
from hana_voice.frontend.selection import TEMPLATE_SOURCE, choose_questionnaire
from hana_voice.frontend.source import TemplateSource
from hana_voice.settings import Settings
from tests.frontend.database import SEEDED_TEMPLATE_ID, load_contract
from tests.postgres import PostgresServer


class _Services:
    """The two things choose_questionnaire reads from Services."""

    def __init__(self, source: TemplateSource) -> None:
        self.settings = Settings()
        self.extras = {TEMPLATE_SOURCE: source, "questionnaires": {}}


def _report(label: str, walls: list[float], cpu: float) -> None:
    cuts = statistics.quantiles(walls, n=100, method="inclusive")
    print(
        f"{label:<34} n={len(walls):<6} p50={cuts[49] * 1e3:8.3f} ms  "
        f"p99={cuts[98] * 1e3:8.3f} ms  max={max(walls) * 1e3:8.3f} ms  "
        f"cpu/lookup={cpu / len(walls) * 1e3:7.3f} ms"
    )


async def _measure(source: TemplateSource, count: int, *, cache: bool, fresh: bool) -> None:
    services = _Services(source)
    setup = CallStarted(questionnaire_id=SEEDED_TEMPLATE_ID)
    walls: list[float] = []
    cpu = 0.0
    for _ in range(count):
        if not cache:
            source._cache.pop(SEEDED_TEMPLATE_ID, None)
        if fresh:
            await trio.to_thread.run_sync(source.slots.close)
            source.slots._closed = False
        c0, t0 = time.process_time(), time.perf_counter()
        questionnaire = await choose_questionnaire(services, setup)  # type: ignore[arg-type]  # a stand-in for Services
        walls.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        assert questionnaire.id == SEEDED_TEMPLATE_ID
    label = "cached" if cache else ("uncached, new connection" if fresh else "uncached, pooled")
    _report(label, walls, cpu)


async def main(args: argparse.Namespace) -> None:
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database("bench")
        load_contract(url)
        source = TemplateSource(url)
        await source.refresh()
        await _measure(source, args.cached, cache=True, fresh=False)
        await _measure(source, args.uncached, cache=False, fresh=False)
        await _measure(source, args.cold, cache=False, fresh=True)
        await trio.to_thread.run_sync(source.slots.close)
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached", type=int, default=20000)
    parser.add_argument("--uncached", type=int, default=1000)
    parser.add_argument("--cold", type=int, default=200)
    trio.run(main, parser.parse_args())
