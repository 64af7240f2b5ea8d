"""Result write latency: record_answer through the async facade and on the raw core.

Run: .venv/bin/python bench/bench_results.py [--answers N]

Each answer is one committed transaction in a fresh SQLite file (WAL) under a temporary
directory, as in production. Prints p50/p99/max per mode and synchronous setting, and the
facade's overhead over the raw core (the thread hop and limiter).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

import trio

from hana_voice.results import ResultDatabase, ResultStore
from hana_voice.results.tables import AnswerRecord

Sync = Literal["FULL", "NORMAL"]
METADATA = {"patient_id": "p-1", "hospital_id": "h-1", "campaign_id": "c-1", "call_context": {}}


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000, max(samples) * 1000


def _report(label: str, samples: list[float]) -> float:
    p50, p99, worst = _percentiles(samples)
    print(
        f"{label:<28} n={len(samples):<5} p50={p50:7.3f} ms  p99={p99:7.3f} ms  max={worst:7.3f} ms"
    )
    return p50


def bench_raw(directory: Path, answers: int, synchronous: Sync) -> list[float]:
    db = ResultDatabase(directory / f"raw-{synchronous}.sqlite3", synchronous=synchronous)
    samples = []
    for call in range(answers // 10):
        session = f"s{call}"
        db.start_call(session, "tpl", 10, METADATA, time.time())
        for n in range(10):
            answer = AnswerRecord(session, f"q{n}", n, "نعم، الحمد لله", 0.9, 1.5)
            start = time.perf_counter()
            db.record_answer(answer, time.time())
            samples.append(time.perf_counter() - start)
        db.finish_call(session, "completed", 60.0, time.time())
    db.close()
    return samples


async def bench_facade(directory: Path, answers: int, synchronous: Sync) -> list[float]:
    samples = []
    path = directory / f"facade-{synchronous}.sqlite3"
    async with ResultStore.open(path, synchronous=synchronous) as store:
        for call in range(answers // 10):
            session = f"s{call}"
            await store.start_call(session, "tpl", 10, METADATA)
            for n in range(10):
                start = time.perf_counter()
                await store.record_answer(session, f"q{n}", n, "نعم، الحمد لله", 0.9, 1.5)
                samples.append(time.perf_counter() - start)
            await store.finish_call(session, "completed", 60.0)
    return samples


async def bench_concurrent(directory: Path, answers: int, calls: int) -> list[float]:
    """``calls`` sessions answering at once on one store (writes queue behind one thread)."""
    samples: list[float] = []
    path = directory / f"concurrent-{calls}.sqlite3"

    async def one_call(store: ResultStore, session: str) -> None:
        await store.start_call(session, "tpl", 10, METADATA)
        for n in range(answers // calls):
            start = time.perf_counter()
            await store.record_answer(session, f"q{n}", n, "نعم، الحمد لله", 0.9, 1.5)
            samples.append(time.perf_counter() - start)
        await store.finish_call(session, "completed", 60.0)

    async with ResultStore.open(path) as store, trio.open_nursery() as nursery:
        for call in range(calls):
            nursery.start_soon(one_call, store, f"s{call}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"record_answer, {args.answers} answers per row, one transaction each, in {tmp}")
        for synchronous in ("FULL", "NORMAL"):
            raw = _report(
                f"raw core, sync={synchronous}", bench_raw(directory, args.answers, synchronous)
            )
            facade_samples = trio.run(bench_facade, directory, args.answers, synchronous)
            facade = _report(f"async facade, sync={synchronous}", facade_samples)
            print(f"{'':<28} facade/raw p50 ratio = {facade / raw:.2f}")
        calls = 10
        samples = trio.run(bench_concurrent, directory, args.answers, calls)
        _report(f"facade, {calls} calls at once, FULL", samples)


if __name__ == "__main__":
    main()
