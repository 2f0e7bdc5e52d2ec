"""Peak memory (VmHWM) of `oscartes serve` holding N initiatives, after a mix of requests.

The mix: records in every format the node serves, and collection pages followed through
their `next` links (20 and 100 items a page). Target: VmHWM <= 500 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import HOST, free_port, http_get, node_server, proc_status, row, write_json
from bench.synth import dataset, sample_slugs

TARGET_MB = 500.0
RECORD_FORMATS = ["application/activity+json", "application/ld+json", "text/turtle", "application/n-triples",
                  "application/n-quads", "text/html"]  # fmt: skip
AS2 = "application/activity+json"


def walk_pages(base: str, limit: int, pages: int) -> list[int]:
    """Follow `next` from the first page; statuses of the pages fetched."""
    url: str | None = f"{base}/initiatives?page=true&limit={limit}"
    statuses: list[int] = []
    while url is not None and len(statuses) < pages:
        status, _, body = http_get(url, AS2, timeout=30.0)
        statuses.append(status)
        nxt = json.loads(body).get("next") if status == 200 else None
        url = f"{base}{nxt[nxt.index('/initiatives') :]}" if nxt else None
    return statuses


def fetch(job: tuple[str, str], deadline: float) -> int:
    """Status of one GET (0: not sent, the time budget was spent)."""
    if time.monotonic() > deadline:
        return 0
    url, accept = job
    return http_get(url, accept, timeout=30.0)[0]


@dataclass
class MemoryResult:
    n: int
    requests: int
    seconds: float
    statuses: dict[str, int]
    rss_started_mb: float
    hwm_started_mb: float
    rss_end_mb: float
    hwm_end_mb: float
    target_mb: float
    target_met: bool
    disk_mb: dict[str, float] = field(default_factory=dict)


def _mb(kb: int) -> float:
    return kb / 1024


def _disk(data: Path) -> dict[str, float]:
    sqlite_files = sum(p.stat().st_size for p in data.glob("oscartes.sqlite3*"))
    rdf = sum(p.stat().st_size for p in (data / "rdf").rglob("*") if p.is_file())
    return {"sqlite": sqlite_files / 2**20, "rdf": rdf / 2**20}


def run(n: int, records: int, walks: int, workers: int, budget: float) -> MemoryResult:
    data = dataset(n)
    config = data.config
    slugs = sample_slugs(config.data_dir / "oscartes.sqlite3", records)
    rng = random.Random(5)
    port = free_port()
    with node_server(config.data_dir, port) as server:
        started = proc_status(server.pid)
        base = f"http://{HOST}:{port}"
        jobs = [(f"{base}/initiatives/{slug}", rng.choice(RECORD_FORMATS)) for slug in slugs]
        statuses: Counter[int] = Counter()
        begin = time.monotonic()
        deadline = begin + budget
        with ThreadPoolExecutor(workers) as pool:  # bounded: a fixed list of requests and a deadline
            page_walks = [pool.submit(walk_pages, base, 20 if i % 2 else 100, 10) for i in range(walks)]
            statuses.update(pool.map(lambda job: fetch(job, deadline), jobs))
            for walk in page_walks:
                statuses.update(walk.result(timeout=max(1.0, deadline - time.monotonic())))
        seconds = time.monotonic() - begin
        end = proc_status(server.pid)
    hwm = _mb(end["VmHWM"])
    return MemoryResult(
        n=n, requests=sum(statuses.values()), seconds=seconds,
        statuses={str(k): v for k, v in sorted(statuses.items())},
        rss_started_mb=_mb(started["VmRSS"]), hwm_started_mb=_mb(started["VmHWM"]),
        rss_end_mb=_mb(end["VmRSS"]), hwm_end_mb=hwm, target_mb=TARGET_MB, target_met=hwm <= TARGET_MB,
        disk_mb=_disk(config.data_dir),
    )  # fmt: skip


def report(r: MemoryResult) -> None:
    print(f"memory: `oscartes serve` with {r.n:,} initiatives, after {r.requests} requests in {r.seconds:.1f} s")
    print(f"  answers by status: {r.statuses}   (0 = skipped by the time budget)")
    print(row("RSS once ready", r.rss_started_mb, "MB"))
    print(row("peak RSS (VmHWM) once ready", r.hwm_started_mb, "MB"))
    print(row("RSS after the requests", r.rss_end_mb, "MB"))
    print(row("peak RSS (VmHWM) after the requests", r.hwm_end_mb, "MB"))
    print(f"  on disk: SQLite {r.disk_mb['sqlite']:,.0f} MB, Oxigraph {r.disk_mb['rdf']:,.0f} MB")
    print(f"  target VmHWM <= {r.target_mb:.0f} MB: {'met' if r.target_met else 'MISSED'}")


def main(argv: list[str] | None = None) -> MemoryResult:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="synthetic initiatives (default 100000)")
    parser.add_argument("--records", type=int, default=400, help="record GETs (formats mixed)")
    parser.add_argument("--walks", type=int, default=20, help="collection walks of 10 pages each")
    parser.add_argument("--workers", type=int, default=8, help="concurrent clients")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for the requests at most")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run(args.n, args.records, args.walks, args.workers, args.budget)
    report(result)
    write_json(args.json, "memory", result)
    return result


if __name__ == "__main__":
    main()
