"""Search while a heavy SPARQL query runs: 20 search clients on `/search` over the region
(bench/region.py), first alone, then while one SPARQL query of about ten seconds runs on
the same node. Target: the search p99 under the SPARQL query stays within 2x its idle value.

Each client is a thread with its own keep-alive connection, asking the questions of
bench_search_http (1,000, the same seed) in turn, each starting at another place in the
list, one after another (a closed loop: 20 requests in flight at all times). A round is an
idle window then a loaded one of the same length; the loaded window opens half a second
after the SPARQL query is sent and must close before its answer comes back, else the
round says so. The heavy query counts pairs of an event and an initiative sharing a theme
for events of a window of hours sized to take about ten seconds on this data (`--hours`).
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from bench.bench_search_http import path_of, questions
from bench.bench_sparql import PREFIXES
from bench.common import free_port, node_server, percentile, row, write_json
from bench.keepalive import KeepAlive
from bench.region import ANCHOR, region

TARGET_RATIO = 2.0
CLIENTS = 20


def heavy_query(hours: int) -> str:
    """Events of `hours` hours from ANCHOR, each joined to every initiative of one of its
    themes, counted: one row, so the time is evaluation, not output. Oxigraph checks each
    initiative found by theme for its type, one index lookup each (about 20,000 a second
    here), so the time grows with the window: 24 hours took 8.8 s on the bare store."""
    start, end = ANCHOR, ANCHOR + timedelta(hours=hours)
    return PREFIXES + f"""SELECT (COUNT(*) AS ?pairs) WHERE {{
  ?event a as:Event ; pair:hasTopic ?theme ; as:startTime ?start .
  FILTER(?start >= "{start:%Y-%m-%dT%H:%M:%SZ}"^^xsd:dateTime && ?start < "{end:%Y-%m-%dT%H:%M:%SZ}"^^xsd:dateTime)
  ?initiative a as:Organization ; pair:hasTopic ?theme .
}}"""


@dataclass
class Window:
    requests: int
    per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


@dataclass
class Round:
    idle: Window
    loaded: Window
    sparql_s: float
    sparql_status: int
    #: the loaded window closed before the SPARQL answer came back
    covered: bool


@dataclass
class ConcurrencyResult:
    clients: int
    window_s: float
    hours: int
    sparql_timeout_s: float
    rounds: list[Round] = field(default_factory=list)
    idle_p99_ms: float = 0.0
    loaded_p99_ms: float = 0.0
    ratio: float = 0.0
    target_met: bool = False


def clients_for(port: int, paths: list[str], seconds: float) -> Window:
    """CLIENTS threads asking in a closed loop for `seconds`; latencies of answers begun in it."""
    times: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        conn = KeepAlive(port, timeout=60)
        i = n * len(paths) // CLIENTS
        try:
            while time.monotonic() < stop:
                answer = conn.get(paths[i % len(paths)])
                i += 1
                if answer.status == 200:
                    times[n].append(answer.ms)
                else:
                    errors[n] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 90)
    flat = [ms for per in times for ms in per]
    elapsed = time.monotonic() - (stop - seconds)  # until the last answer begun in the window
    return Window(len(flat), len(flat) / elapsed, percentile(flat, 50), percentile(flat, 99), max(flat), sum(errors))


def one_round(port: int, paths: list[str], window: float, query: str) -> Round:
    idle = clients_for(port, paths, window)
    outcome: dict[str, float] = {}

    def sparql() -> None:
        conn = KeepAlive(port, timeout=300)
        try:
            answer = conn.sparql(query)
            outcome["ms"], outcome["status"] = answer.ms, answer.status
        finally:
            conn.close()
        outcome["ended"] = time.monotonic()

    heavy = threading.Thread(target=sparql, daemon=True)
    heavy.start()
    time.sleep(0.5)
    loaded = clients_for(port, paths, window)
    closed = time.monotonic()
    heavy.join(300)
    return Round(idle, loaded, outcome.get("ms", 0.0) / 1000, int(outcome.get("status", 0)),
                 outcome.get("ended", float("inf")) >= closed)  # fmt: skip


def run(scale: float, rounds: int, window: float, hours: int, timeout: float) -> ConcurrencyResult:
    data = region(scale)
    paths = [path_of(q) for q in questions(1000)]
    query = heavy_query(hours)
    port = free_port()
    result = ConcurrencyResult(CLIENTS, window, hours, timeout)
    env = {"OSCARTES_SPARQL_TIMEOUT": str(timeout)}
    with node_server(data.config.data_dir, port, name="concurrency-node", env=env):
        warm = KeepAlive(port, timeout=300)
        for path in paths[:100]:
            warm.get(path)
        alone = warm.sparql(query)  # its time alone, and its pages warm
        warm.close()
        print(f"  heavy SPARQL alone: {alone.ms / 1000:.1f} s (status {alone.status})", flush=True)
        for n in range(rounds):
            result.rounds.append(one_round(port, paths, window, query))
            r = result.rounds[-1]
            print(f"  round {n + 1}: idle p99 {r.idle.p99_ms:.1f} ms, loaded p99 {r.loaded.p99_ms:.1f} ms, "
                  f"SPARQL {r.sparql_s:.1f} s ({r.sparql_status}){'' if r.covered else ', ended inside'}",
                  flush=True)  # fmt: skip
    result.idle_p99_ms = percentile([r.idle.p99_ms for r in result.rounds], 50)
    result.loaded_p99_ms = percentile([r.loaded.p99_ms for r in result.rounds], 50)
    result.ratio = result.loaded_p99_ms / result.idle_p99_ms
    result.target_met = result.ratio <= TARGET_RATIO
    return result


def report(r: ConcurrencyResult) -> None:
    print(f"concurrency: {r.clients} search clients, windows of {r.window_s:g} s, {len(r.rounds)} rounds "
          f"(median round shown)")  # fmt: skip
    for n, one in enumerate(r.rounds, 1):
        errors = one.idle.errors + one.loaded.errors
        print(f"  round {n}: idle {one.idle.per_s:.1f} req/s p50 {one.idle.p50_ms:.1f} p99 {one.idle.p99_ms:.1f} ms; "
              f"loaded {one.loaded.per_s:.1f} req/s p50 {one.loaded.p50_ms:.1f} p99 {one.loaded.p99_ms:.1f} ms; "
              f"SPARQL {one.sparql_s:.1f} s{'' if one.covered else ' (ended inside the window)'}"
              f"{f'; {errors} errors' if errors else ''}")  # fmt: skip
    print(row("search p99, idle", r.idle_p99_ms, "ms"))
    print(row("search p99, while the SPARQL query runs", r.loaded_p99_ms, "ms"))
    print(row("ratio", r.ratio, f"x  target <= {TARGET_RATIO:g}: {'met' if r.target_met else 'MISSED'}"))


def main(argv: list[str] | None = None) -> ConcurrencyResult:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the region's sizes (default 1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=8.0, help="seconds of each measuring window")
    parser.add_argument("--hours", type=int, default=40, help="event window of the heavy query (sets its duration)")
    parser.add_argument("--sparql-timeout", type=float, default=60.0, help="the node's OSCARTES_SPARQL_TIMEOUT")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run(args.scale, args.rounds, args.window, args.hours, args.sparql_timeout)
    report(result)
    write_json(args.json, "concurrency", result)
    return result


if __name__ == "__main__":
    main()
