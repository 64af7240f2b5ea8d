"""Results store on PostgreSQL vs SQLite: answer write latency, and outbox deliveries per
second with one and two replicas.

Run: .venv/bin/python bench/bench_results_store.py [--answers N] [--calls N]

- Answer writes: ``ResultStore.record_answer`` (thread hop, one committed transaction per
  answer) on SQLite (WAL, synchronous=FULL) and on a private PostgreSQL 15 cluster
  (tests/postgres.py) switched back to durable commits (fsync, synchronous_commit on).
- Outbox: ``--calls`` finished calls queued in PostgreSQL, then delivered by one or two
  worker processes (each a replica's OutboxWorker, SKIP LOCKED claims) to a JWT-checking
  receiver on loopback in this process. Reports wall time, deliveries/s and the workers' CPU
  time per delivery (the box is shared: CPU per delivery is the steadier figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from hana_voice.results.store import ResultStore
from hana_voice.settings import Settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.postgres import PostgresServer  # noqa: E402  # after the path insert
from tests.results.receiver import Receiver  # noqa: E402

JWT = "bench-jwt-secret-0123456789-abcdefghijkl"
METADATA = {"patient_id": "p-1", "hospital_id": "h-1", "campaign_id": "c-1", "call_context": {}}

WORKER = """
import sys, trio
from hana_voice.results.outbox import OutboxWorker, RetryPolicy
from hana_voice.results.store import ResultStore
from hana_voice.settings import Settings
url, front, jwt, name = sys.argv[1:5]
async def main():
    settings = Settings(data_dir="/tmp", database_url=url, nextjs_api_url=front, jwt_secret=jwt,
                        replica_id=name, database_pool_size=2)
    async with ResultStore.open_settings(settings, recover=False) as store:
        worker = OutboxWorker(store, settings, policy=RetryPolicy(poll_interval=0.05))
        while True:
            await worker.run_once()
            backlog = await store.backlog()
            if backlog["pending"] == 0 and backlog["delivering"] == 0:
                return
trio.run(main)
"""


def _cuts(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


async def answer_latency(store: ResultStore, answers: int) -> list[float]:
    samples = []
    for call in range(answers // 10):
        session = f"s{call}"
        await store.start_call(session, "tpl", 10, METADATA)
        for n in range(10):
            started = time.perf_counter()
            await store.record_answer(session, f"q{n}", n, "نعم، الحمد لله", 0.9, 1.5)
            samples.append(time.perf_counter() - started)
        await store.finish_call(session, "completed", 30.0)
    return samples


async def queue_calls(settings: Settings, calls: int) -> None:
    async with ResultStore.open_settings(settings) as store:
        for call in range(calls):
            session = f"c{call}"
            await store.start_call(session, "tpl", 2, METADATA)
            await store.record_answer(session, "q1", 1, "نعم", 0.9, 1.0)
            await store.finish_call(session, "completed", 20.0)


async def deliveries(url: str, calls: int, replicas: int) -> tuple[float, float]:
    """(deliveries per second, worker CPU ms per delivery)."""
    async with trio.open_nursery() as nursery:
        receiver = Receiver(JWT)
        await receiver.serve(nursery)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        processes = [
            await trio.lowlevel.open_process(
                [sys.executable, "-c", WORKER, url, receiver.url, JWT, f"bench-{n}"],
                env={**os.environ, "LOG_LEVEL": "ERROR"},
            )
            for n in range(replicas)
        ]
        for process in processes:
            await process.wait()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert len(receiver.accepted) == calls, (len(receiver.accepted), calls)
        assert len(receiver.delivered) == calls, "a call was delivered twice"
        nursery.cancel_scope.cancel()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return calls / wall, cpu / calls * 1000


def durable_server() -> PostgresServer:
    """The tests' throw-away cluster with durable commits back on (the tests turn them off)."""
    server = PostgresServer()
    with open(server.data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n")
    server.start()
    return server


async def main(answers: int, calls: int) -> None:
    server = await trio.to_thread.run_sync(durable_server)
    try:
        with tempfile.TemporaryDirectory() as directory:
            async with ResultStore.open(Path(directory) / "bench.sqlite3") as store:
                sqlite = await answer_latency(store, answers)
            pg_settings = Settings(data_dir=Path(directory), database_url=server.create_database())
            async with ResultStore.open_settings(pg_settings) as store:
                postgres = await answer_latency(store, answers)
        for label, samples in (
            ("SQLite (WAL, FULL)", sqlite),
            ("PostgreSQL 15 (durable)", postgres),
        ):
            p50, p99 = _cuts(samples)
            print(f"answer write {label:<26} n={len(samples)} p50={p50:.2f} ms p99={p99:.2f} ms")
        for replicas in (1, 2):
            url = server.create_database()
            await queue_calls(Settings(data_dir=Path("/tmp"), database_url=url), calls)
            rate, cpu = await deliveries(url, calls, replicas)
            print(
                f"outbox {replicas} replica(s): {calls} calls, {rate:.0f} deliveries/s,"
                f" worker CPU {cpu:.2f} ms per delivery"
            )
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    trio.run(main, args.answers, args.calls)
