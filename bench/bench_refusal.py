"""Server CPU per WebSocket refused over the session cap.

Run: .venv/bin/python bench/bench_refusal.py [--connections 300] [--rounds 3] [--server-root DIR]

The server (bench_attacks.server, cap 1) runs as a subprocess; one session holds the slot and
``--connections`` clients connect at once and are refused with 1013. Prints the server
process's CPU time (user + system, from /proc) per refused connection for each round. The
first round also pays for warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_attacks  # a sibling script, not a package


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def refuse(url: str, pid: int, connections: int, rounds: int) -> None:
    ws_url = url.replace("http", "ws") + "/ws"

    async def one() -> None:
        try:
            async with open_websocket_url(ws_url) as ws:
                await ws.get_message()
        except ConnectionClosed:
            pass

    async with open_websocket_url(ws_url) as held:
        await held.get_message()
        for index in range(rounds):
            before, started = cpu_seconds(pid), time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    nursery.start_soon(one)
            per = 1e3 * (cpu_seconds(pid) - before) / connections
            print(
                f"round {index + 1}: {connections} refused, server CPU {per:.2f} ms each, "
                f"wall {time.perf_counter() - started:.2f} s",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-root", type=Path, default=None)
    args = parser.parse_args()
    bench_attacks.CAPACITY = 1
    with bench_attacks.server(args.server_root) as (url, process):
        for _ in range(300):
            try:
                httpx.get(url + "/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        trio.run(refuse, url, process.pid, args.connections, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
