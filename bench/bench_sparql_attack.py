"""The hostile SPARQL queries of docs/sparql.md §5 against a node: time from the deadline to the
freed slot, peak memory of the node and its query processes, and `GET /` latency meanwhile
(against the same node idle, in the same run).

    .venv/bin/python -m bench.bench_sparql_attack [--timeout 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from node.keys import SPARQL
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_sparql_limits import COUNTED, SORTED, with_triples


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return int(next(li for li in status if li.startswith("VmRSS:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return 0.0


async def home_latencies(node: RunningNode, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        async with node.http.get(f"{node.base}/") as r:
            await r.read()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def round_(node: RunningNode, limit: float) -> tuple[float, float, float]:
    endpoint = node.server.app[SPARQL]
    peak = 0.0
    started = time.monotonic()
    attack = [asyncio.create_task(node.http.get(f"{node.base}/sparql", params={"query": q})) for q in (SORTED, COUNTED)]

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb(os.getpid()) + sum(rss_mb(p) for p in list(endpoint.children)))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    latencies = await home_latencies(node, 40)
    for task in attack:
        (await task).release()
    await endpoint.no_children.wait()  # reaped: the slots are given back in the same step
    freed = time.monotonic() - (started + limit)
    sampler.cancel()
    return freed * 1000, peak, statistics.median(latencies)


async def main(limit: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        node = await start_node(Path(folder) / "node", "", OSCARTES_SPARQL_TIMEOUT=str(limit))
        try:
            await with_triples(node)
            idle = statistics.median(await home_latencies(node, 100))
            print(f"GET / idle: p50 {idle:.1f} ms; node RSS {rss_mb(os.getpid()):.0f} MB")
            for n in range(rounds):
                freed, peak, busy = await round_(node, limit)
                print(f"round {n + 1}: deadline -> freed slots {freed:.0f} ms; peak RSS node + queries {peak:.0f} MB; "
                      f"GET / p50 during the attack {busy:.1f} ms ({busy / idle:.2f}x idle)")
        finally:
            await stop_node(node)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.timeout, args.rounds))
