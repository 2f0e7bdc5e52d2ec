"""Search by bounding box + theme + text: the node's SQL search against a SPARQL FILTER scan.

Both answer the same few hundred questions on the same N synthetic initiatives: the SQL
side is `node.storage.search.search` (FTS5 + the lat/lon index + record_themes), the
baseline the equivalent SPARQL query on the Oxigraph index, run with `Store.query` in the
same process. Target: search p50 <= 20 ms and >= 50x faster than the SPARQL scan.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field

import pyoxigraph as ox

from bench.common import percentile, row, write_json
from bench.synth import CLUSTERS, FRANCE, QUERY_WORDS, Dataset, dataset
from node.config import Config
from node.storage.db import make_engine
from node.storage.search import SearchQuery, search
from vocab import schemes

TARGET_RATIO = 50.0
TARGET_P50_MS = 20.0
LIMIT = 20
PREFIXES = ("PREFIX as: <https://www.w3.org/ns/activitystreams#>\n"
            "PREFIX pair: <http://virtual-assembly.org/ontologies/pair#>\n")  # fmt: skip


def queries(count: int, seed: int = 7) -> list[SearchQuery]:
    """Varied questions: a box from a street to a region, around a city or anywhere, a theme
    with its narrower concepts, one or two words."""
    rng = random.Random(seed)
    themes = sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "themes")
    found = []
    for _ in range(count):
        if rng.random() < 0.7:
            _, _, lat, lon, _, _ = rng.choice(CLUSTERS)
        else:
            min_lon, min_lat, max_lon, max_lat = FRANCE
            lat, lon = rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon)
        half = rng.choice([0.05, 0.15, 0.5, 1.5])
        bbox = (round(lon - half * 1.4, 4), round(lat - half, 4), round(lon + half * 1.4, 4), round(lat + half, 4))
        words = " ".join(rng.sample(QUERY_WORDS, 2 if rng.random() < 0.3 else 1))
        closure = sorted(schemes.narrower_closure(rng.choice(themes)))
        found.append(SearchQuery(kinds=["initiative"], themes=closure, bbox=bbox, text=words, limit=LIMIT))
    return found


def sparql(q: SearchQuery, graph: str, limit: int | None = LIMIT) -> str:
    """The same question as SPARQL FILTERs: box on as:latitude/longitude, theme on pair:hasTopic,
    each word in the name or the summary (the generator keeps query words accent-free)."""
    assert q.bbox is not None
    min_lon, min_lat, max_lon, max_lat = q.bbox
    topics = ", ".join(f"<{t}>" for t in q.themes)
    words = " && ".join(
        f'(CONTAINS(LCASE(?name), "{w}") || CONTAINS(LCASE(COALESCE(?summary, "")), "{w}"))' for w in q.text.split()
    )
    return (
        f"{PREFIXES}SELECT DISTINCT ?s ?name WHERE {{ GRAPH <{graph}> {{\n"
        f"  ?s a as:Organization ; as:name ?name ; as:location ?place .\n"
        f"  ?place as:latitude ?lat ; as:longitude ?lon .\n"
        f"  FILTER(?lat >= {min_lat} && ?lat <= {max_lat} && ?lon >= {min_lon} && ?lon <= {max_lon})\n"
        f"  FILTER EXISTS {{ ?s pair:hasTopic ?topic FILTER(?topic IN ({topics})) }}\n"
        f"  OPTIONAL {{ ?s as:summary ?summary }}\n"
        f"  FILTER({words})\n"
        f"}} }}" + (f" LIMIT {limit}" if limit else "")
    )


def run_sparql(store: ox.Store, text: str) -> list[str]:
    result = store.query(text)
    assert isinstance(result, ox.QuerySolutions)
    return [s["s"].value for s in result]


async def time_search(config: Config, qs: list[SearchQuery]) -> tuple[list[float], list[int]]:
    """Milliseconds per query and hits, on one pooled connection of the node's own engine."""
    engine = make_engine(config.effective_database_url)
    try:
        async with engine.connect() as conn:
            for q in qs[:20]:  # warm-up: page cache, statement cache
                await search(conn, q)
            times, hits = [], []
            for q in qs:
                started = time.perf_counter()
                found = await search(conn, q)
                times.append((time.perf_counter() - started) * 1000)
                hits.append(len(found))
            return times, hits
    finally:
        await engine.dispose()


async def all_matches(config: Config, qs: list[SearchQuery]) -> list[set[str]]:
    engine = make_engine(config.effective_database_url)
    try:
        async with engine.connect() as conn:
            return [{h.iri for h in await search(conn, SearchQuery(**{**q.__dict__, "limit": 10**6}))} for q in qs]
    finally:
        await engine.dispose()


@dataclass
class SearchResult:
    n: int
    generation_s: float
    generation_cached: bool
    queries: int
    search_p50_ms: float
    search_p99_ms: float
    search_mean_hits: float
    sparql_queries: int
    sparql_p50_ms: float
    sparql_p99_ms: float
    search_p50_same_ms: float
    search_p99_same_ms: float
    ratio_p50: float
    ratio_p99: float
    agreement: str
    target_ratio_met: bool
    target_p50_met: bool
    selectivity: dict[str, float] = field(default_factory=dict)


def run(n: int, count: int, budget: float, checks: int) -> SearchResult:
    data: Dataset = dataset(n)
    config = data.config
    qs = queries(count)
    search_ms, hits = asyncio.run(time_search(config, qs))
    store = ox.Store(str(config.store_path))
    try:
        run_sparql(store, sparql(qs[0], config.graph_iri))  # warm-up
        sparql_ms: list[float] = []
        deadline = time.monotonic() + budget
        for q in qs:  # bounded by the query list and by the time budget
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            run_sparql(store, sparql(q, config.graph_iri))
            sparql_ms.append((time.perf_counter() - started) * 1000)
        # Same question, same answer: every match (no LIMIT) of the queries with the most hits.
        busiest = [qs[i] for i in sorted(range(len(qs)), key=lambda i: -hits[i])[:checks]]
        sql_sets = asyncio.run(all_matches(config, busiest))
        sparql_sets = [set(run_sparql(store, sparql(q, config.graph_iri, None))) for q in busiest]
        agree = sum(a == b for a, b in zip(sparql_sets, sql_sets, strict=True))
        compared = sum(len(s) for s in sql_sets)
    finally:
        del store
    same = search_ms[: len(sparql_ms)]
    return SearchResult(
        n=n, generation_s=round(data.seconds, 1), generation_cached=data.cached, queries=count,
        search_p50_ms=percentile(search_ms, 50), search_p99_ms=percentile(search_ms, 99),
        search_mean_hits=sum(hits) / len(hits), sparql_queries=len(sparql_ms),
        sparql_p50_ms=percentile(sparql_ms, 50), sparql_p99_ms=percentile(sparql_ms, 99),
        search_p50_same_ms=percentile(same, 50), search_p99_same_ms=percentile(same, 99),
        ratio_p50=percentile(sparql_ms, 50) / percentile(same, 50),
        ratio_p99=percentile(sparql_ms, 99) / percentile(same, 99),
        agreement=f"{agree}/{len(busiest)} queries ({compared} matches)",
        target_ratio_met=percentile(sparql_ms, 50) / percentile(same, 50) >= TARGET_RATIO,
        target_p50_met=percentile(search_ms, 50) <= TARGET_P50_MS,
        selectivity=data.selectivity,
    )  # fmt: skip


def report(r: SearchResult) -> None:
    source = "cached" if r.generation_cached else "generated now"
    print(f"search: bbox + theme + text on {r.n:,} initiatives ({source}; generation took {r.generation_s:.1f} s)")
    low, high = min(r.selectivity.values()), max(r.selectivity.values())
    print(f"  query words hit {low:.2%} .. {high:.2%} of the records; {r.queries} queries, limit {LIMIT}")
    print(row("node search p50", r.search_p50_ms, "ms"))
    print(row("node search p99", r.search_p99_ms, "ms"))
    print(row("node search mean hits", r.search_mean_hits))
    print(f"  SPARQL FILTER scan on Oxigraph ({r.sparql_queries} of the same queries):")
    print(row("SPARQL p50", r.sparql_p50_ms, "ms"))
    print(row("SPARQL p99", r.sparql_p99_ms, "ms"))
    print(row("ratio SPARQL/search p50 (same queries)", r.ratio_p50, "x"))
    print(row("ratio SPARQL/search p99 (same queries)", r.ratio_p99, "x"))
    print(f"  same answers, every match (no limit) of the busiest queries: {r.agreement}")
    print(f"  target >= {TARGET_RATIO:.0f}x: {'met' if r.target_ratio_met else 'MISSED'}; "
          f"p50 <= {TARGET_P50_MS:.0f} ms: {'met' if r.target_p50_met else 'MISSED'}")  # fmt: skip


def main(argv: list[str] | None = None) -> SearchResult:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="synthetic initiatives (default 100000)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sparql-budget", type=float, default=300.0, help="seconds for the SPARQL side at most")
    parser.add_argument("--checks", type=int, default=5, help="queries whose full answers are compared")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run(args.n, args.queries, args.sparql_budget, args.checks)
    report(result)
    write_json(args.json, "search", result)
    return result


if __name__ == "__main__":
    main()
