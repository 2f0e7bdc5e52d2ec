"""Search for people through HTTP: 1,000 mixed questions on `/search` over the region
(bench/region.py: 135,000 records on three nodes' graphs), one keep-alive client, one
question after another; and the same questions through the in-process search, to tell the
HTTP layer's share.

Each question has a place (a commune or a département by INSEE code, a radius around a
point, or a box), and some of: a theme (by IRI or by notation), words, an event date
window, an origin; the kind is an initiative, an event or a need. Questions are the same
for the same seed. Every answer must be 200 with an `items` list. Targets: p50 <= 20 ms,
p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from multidict import MultiDict
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.common import free_port, node_server, percentile, row, write_json
from bench.keepalive import KeepAlive
from bench.region import ANCHOR, FOLLOWED, OWN, Region, region, weighted_communes
from bench.synth import QUERY_WORDS
from node.communes import communes as communes_index
from node.routes.search_params import Origins, digest, parse
from node.storage import search as store
from node.storage.db import make_engine
from node.storage.repo import departement_of
from vocab import schemes

TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
KINDS = [("initiative", 0.55), ("event", 0.30), ("need", 0.15)]
PLACES = ("commune", "departement", "near", "bbox")


def questions(count: int, seed: int = 5) -> list[dict[str, str]]:
    """Query strings of `count` varied questions (as dicts: the same for HTTP and in process)."""
    rng = random.Random(seed)
    towns, cumulative = weighted_communes()
    themes = sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "themes")
    found = []
    for _ in range(count):
        town = towns[min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), len(towns) - 1)]
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        q: dict[str, str] = {"kind": kind}
        place = rng.random()
        if place < 0.25:
            q["commune"] = town.insee
        elif place < 0.5:
            q["departement"] = departement_of(town.insee)
        elif place < 0.75:
            q["near"] = f"{town.lat:.4f},{town.lon:.4f}"
            q["radius_km"] = str(rng.choice([2, 5, 10, 25, 50]))
        else:
            half = rng.choice([0.05, 0.15, 0.5, 1.0])
            q["bbox"] = (f"{town.lon - half * 1.4:.4f},{town.lat - half:.4f},"
                         f"{town.lon + half * 1.4:.4f},{town.lat + half:.4f}")  # fmt: skip
        if rng.random() < 0.5:
            theme = rng.choice(themes)
            q["theme"] = theme if rng.random() < 0.5 else schemes.concepts()[theme].notation
        if rng.random() < 0.4:
            q["q"] = " ".join(rng.sample(QUERY_WORDS, 2 if rng.random() < 0.2 else 1))
        if kind == "event" and rng.random() < 0.7:
            start = ANCHOR + timedelta(days=rng.randrange(-330, 330))
            q["from"] = start.date().isoformat()
            q["to"] = (start + timedelta(days=rng.choice([7, 30, 90]))).date().isoformat()
        if rng.random() < 0.1:
            q["origin"] = rng.choice([OWN, *FOLLOWED]).graph
        found.append(q)
    return found


def path_of(q: dict[str, str]) -> str:
    return "/search?" + urllib.parse.urlencode(q)


@dataclass
class SearchHttpResult:
    sizes: dict[str, int]
    quads: int
    generation_cached: bool
    queries: int
    http_p50_ms: float
    http_p90_ms: float
    http_p99_ms: float
    http_max_ms: float
    mean_items: float
    empty_answers: int
    inprocess_p50_ms: float
    inprocess_p99_ms: float
    inprocess_max_ms: float
    target_p50_met: bool
    target_p99_met: bool
    #: the slowest questions (path, ms): where the p99 comes from
    slowest: list[tuple[str, float]] = field(default_factory=list)
    #: place filter -> (questions, p50, p99) over HTTP
    by_place: dict[str, tuple[int, float, float]] = field(default_factory=dict)


def run_http(port: int, qs: list[dict[str, str]]) -> tuple[list[float], list[int]]:
    client = KeepAlive(port, timeout=30)
    try:
        for q in qs[:50]:  # warm-up: page cache, statement cache
            client.get(path_of(q))
        times, items = [], []
        for q in qs:
            answer = client.get(path_of(q))
            if answer.status != 200:
                raise RuntimeError(f"{path_of(q)} answered {answer.status}: {answer.body[:500]!r}")
            doc = json.loads(answer.body)
            if not isinstance(doc.get("items"), list):
                raise RuntimeError(f"{path_of(q)}: no items list in {answer.body[:300]!r}")
            times.append(answer.ms)
            items.append(len(doc["items"]))
        return times, items
    finally:
        client.close()


def run_inprocess(data: Region, qs: list[dict[str, str]]) -> list[float]:
    """The same questions through what the route calls (parse the query string, one page,
    the facets) on one pooled connection of the node's own engine: the route without HTTP."""
    return asyncio.run(_time_inprocess(data, qs))


async def _time_inprocess(data: Region, qs: list[dict[str, str]]) -> list[float]:
    config = data.config
    names = {key: n.graph for n in (OWN, *FOLLOWED) for key in (n.graph, n.base_url, urlsplit(n.base_url).netloc)}
    origins = Origins(config.graph_iri, names)
    engine = make_engine(config.effective_database_url)
    await asyncio.to_thread(communes_index)

    async def one(conn: AsyncConnection, params: dict[str, str]) -> None:
        query = MultiDict(params)
        q = parse(query, origins, datetime.now(UTC), config.page_size, digest(query))
        await store.search_page(conn, q, digest(query))
        await store.facets(conn, q)

    try:
        async with engine.connect() as conn:
            for params in qs[:50]:
                await one(conn, params)
            times = []
            for params in qs:
                started = time.perf_counter()
                await one(conn, params)
                times.append((time.perf_counter() - started) * 1000)
            return times
    finally:
        await engine.dispose()


def run(scale: float, count: int) -> SearchHttpResult:
    data = region(scale)
    qs = questions(count)
    port = free_port()
    with node_server(data.config.data_dir, port, name="search-node"):
        times, items = run_http(port, qs)
    inproc = run_inprocess(data, qs)
    slowest = sorted(zip((path_of(q) for q in qs), times, strict=True), key=lambda t: -t[1])[:10]
    by_place: dict[str, tuple[int, float, float]] = {}
    for place in PLACES:
        mine = [ms for q, ms in zip(qs, times, strict=True) if place in q]
        by_place[place] = (len(mine), percentile(mine, 50), percentile(mine, 99))
    return SearchHttpResult(
        data.sizes, data.quads, data.cached, len(qs), percentile(times, 50), percentile(times, 90),
        percentile(times, 99), max(times), sum(items) / len(items), sum(1 for i in items if i == 0),
        percentile(inproc, 50), percentile(inproc, 99), max(inproc), percentile(times, 50) <= TARGET_P50_MS,
        percentile(times, 99) <= TARGET_P99_MS, [(p, round(ms, 1)) for p, ms in slowest], by_place,
    )  # fmt: skip


def report(r: SearchHttpResult) -> None:
    print(f"search over HTTP: {r.queries} mixed questions, {sum(r.sizes.values()):,} records on 3 graphs "
          f"({'cached' if r.generation_cached else 'generated now'})")  # fmt: skip
    print(row("GET /search p50", r.http_p50_ms, "ms"))
    print(row("GET /search p90", r.http_p90_ms, "ms"))
    print(row("GET /search p99", r.http_p99_ms, "ms"))
    print(row("GET /search max", r.http_max_ms, "ms"))
    print(row("mean items per answer", r.mean_items))
    print(row("answers with no item", r.empty_answers))
    print(row("in process (parse, page, facets) p50", r.inprocess_p50_ms, "ms"))
    print(row("in process p99", r.inprocess_p99_ms, "ms"))
    print(row("in process max", r.inprocess_max_ms, "ms"))
    print(f"  target p50 <= {TARGET_P50_MS:g} ms: {'met' if r.target_p50_met else 'MISSED'}; "
          f"p99 <= {TARGET_P99_MS:g} ms: {'met' if r.target_p99_met else 'MISSED'}")  # fmt: skip
    for place, (n, p50, p99) in r.by_place.items():
        print(f"  {place:<12} {n:>4} questions: p50 {p50:8.1f} ms, p99 {p99:8.1f} ms")
    print("  slowest:")
    for path, ms in r.slowest[:5]:
        print(f"    {ms:8.1f} ms  {path}")


def main(argv: list[str] | None = None) -> SearchHttpResult:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the region's sizes (default 1)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run(args.scale, args.queries)
    report(result)
    write_json(args.json, "search_http", result)
    return result


if __name__ == "__main__":
    main()
