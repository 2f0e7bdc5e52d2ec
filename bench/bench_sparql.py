"""Four research questions in SPARQL on the region (bench/region.py: 135,000 records on three
nodes' graphs): the node's `/sparql` endpoint against the same queries on a bare pyoxigraph
`Store` (the same data, its own process) and on rdflib in memory (the same quads).

Ours: `oscartes serve` on the region's folder, each query POSTed as `application/sparql-query`
with `Accept: application/sparql-results+json` on a keep-alive connection, the whole body read.
Bare: `Store.query(q, use_default_graph_as_union=True)` on a checkpoint of the same store,
results serialised to SPARQL JSON (so both sides produce the same bytes). rdflib: a
`Dataset(default_union=True)` parsed from the store's N-Quads dump in a child process (it takes
minutes and gigabytes), each query stopped at a cap and reported as "more than" the cap.
Before any timing, every query's rows are compared between ours and bare (they must be the same);
rdflib's are compared when it answers. Targets: ours <= 1.3x bare; rdflib >= 20x ours.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pyoxigraph as ox

from bench.common import OUT, free_port, node_server, percentile, proc_status, row, write_json
from bench.keepalive import KeepAlive
from bench.region import ANCHOR, Region, region

TARGET_BARE = 1.3
TARGET_RDFLIB = 20.0
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"
PREFIXES = """PREFIX as: <https://www.w3.org/ns/activitystreams#>
PREFIX pair: <http://virtual-assembly.org/ontologies/pair#>
PREFIX vf: <https://w3id.org/valueflows/ont/vf#>
PREFIX igeo: <http://rdf.insee.fr/def/geo#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""
_DAY = ANCHOR.strftime("%Y-%m-%dT%H:%M:%SZ")
_THREE_MONTHS = ANCHOR.replace(year=ANCHOR.year + (ANCHOR.month + 2) // 12, month=(ANCHOR.month + 2) % 12 + 1)

#: The four questions of the issue, in the vocabulary the node publishes (docs/data-model.md).
QUERIES: dict[str, str] = {
    # Records of every kind per theme, with the theme's French label from the concept schemes.
    "count by theme": PREFIXES + """SELECT ?theme ?label ?records WHERE {
  { SELECT ?theme (COUNT(?s) AS ?records) WHERE { ?s pair:hasTopic ?theme } GROUP BY ?theme }
  OPTIONAL { ?theme skos:prefLabel ?label FILTER(LANG(?label) = "fr") }
} ORDER BY DESC(?records) ?theme""",
    # Initiatives per département, from the INSEE code of their place (97x: three digits).
    "initiatives per departement": PREFIXES + """SELECT ?departement (COUNT(?s) AS ?initiatives) WHERE {
  ?s a as:Organization ; as:location ?place .
  ?place igeo:codeINSEE ?insee .
  BIND(IF(STRSTARTS(?insee, "97"), SUBSTR(?insee, 1, 3), SUBSTR(?insee, 1, 2)) AS ?departement)
} GROUP BY ?departement ORDER BY DESC(?initiatives) ?departement""",
    # Every event of three months, with its organiser and commune: a list, not a count.
    "events in a date range": PREFIXES + f"""SELECT ?event ?name ?start ?organizer ?insee WHERE {{
  ?event a as:Event ; as:name ?name ; as:startTime ?start .
  FILTER(?start >= "{_DAY}"^^xsd:dateTime && ?start < "{_THREE_MONTHS:%Y-%m-%dT%H:%M:%SZ}"^^xsd:dateTime)
  OPTIONAL {{ ?event as:attributedTo ?organizer }}
  OPTIONAL {{ ?event as:location ?place . ?place igeo:codeINSEE ?insee }}
}} ORDER BY ?start ?event""",
    # Open needs and offers of the same category in the same département, per category. Two
    # groups joined on (?category, ?departement): Oxigraph hash-joins them (3 s here), where the
    # same join written as one group with FILTER(SUBSTR(...) = SUBSTR(...)) runs a lookup per
    # pair and did not end in five minutes.
    "needs x offers by category": PREFIXES + f"""SELECT ?category (COUNT(DISTINCT ?need) AS ?needs)
       (COUNT(DISTINCT ?offer) AS ?offers) (COUNT(*) AS ?pairs) WHERE {{
  {{ ?need vf:purpose "request" ; vf:publishes ?ni ; as:location ?np .
     ?ni vf:resourceClassifiedAs ?category .
     ?np igeo:codeINSEE ?ninsee .
     OPTIONAL {{ ?need as:endTime ?expires }}
     FILTER(!BOUND(?expires) || ?expires >= "{_DAY}"^^xsd:dateTime)
     BIND(SUBSTR(?ninsee, 1, 2) AS ?departement) }}
  {{ ?offer vf:purpose "offer" ; vf:publishes ?oi ; as:location ?op .
     ?oi vf:resourceClassifiedAs ?category .
     ?op igeo:codeINSEE ?oinsee .
     BIND(SUBSTR(?oinsee, 1, 2) AS ?departement) }}
}} GROUP BY ?category ORDER BY DESC(?pairs) ?category""",
}


def _value(term: dict[str, str]) -> str:
    """A term's value; date-times in one form (rdflib writes "Z" as "+00:00")."""
    value = term["value"]
    if term.get("datatype") == XSD_DATETIME and value.endswith("+00:00"):
        return value[: -len("+00:00")] + "Z"
    return value


def rows_of(body: bytes) -> list[tuple[tuple[str, str], ...]]:
    """The solutions of a SPARQL JSON document as comparable values, in their order."""
    doc = json.loads(body)
    return [tuple(sorted((k, _value(v)) for k, v in b.items())) for b in doc["results"]["bindings"]]


def bare(store: ox.Store, query: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    result = store.query(query, use_default_graph_as_union=True)
    assert isinstance(result, ox.QuerySolutions)
    body = result.serialize(format=ox.QueryResultsFormat.JSON)
    return (time.perf_counter() - started) * 1000, body or b""


def ours(client: KeepAlive, query: str) -> tuple[float, bytes]:
    answer = client.sparql(query)
    if answer.status != 200:
        raise RuntimeError(f"/sparql answered {answer.status}: {answer.body[:1000]!r}")
    return answer.ms, answer.body


@dataclass
class QueryFigures:
    name: str
    rows: int
    body_kb: float
    ours_p50_ms: float
    ours_p90_ms: float
    bare_p50_ms: float
    bare_p90_ms: float
    ratio_to_bare: float
    rdflib_ms: float | None  # None: stopped at the cap
    ratio_rdflib: float  # rdflib / ours (p50); a lower bound when rdflib was stopped
    rdflib_agrees: bool | None
    target_bare_met: bool
    target_rdflib_met: bool


@dataclass
class SparqlResult:
    sizes: dict[str, int]
    counts: dict[str, dict[str, int]]
    quads: int
    generation_s: float
    generation_cached: bool
    runs: int
    rdflib_cap_s: float
    rdflib_load_s: float
    rdflib_hwm_mb: float
    node_hwm_mb: float
    queries: list[QueryFigures] = field(default_factory=list)


# -- rdflib, in a child process (minutes, gigabytes) ----------------------------------------


def queries_digest() -> str:
    return hashlib.sha256(json.dumps(QUERIES, sort_keys=True).encode()).hexdigest()[:12]


class Capped(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Capped


def rdflib_worker(nquads: Path, out: Path, cap: float, runs: int) -> None:
    """Load the quads, run every query (SIGALRM stops one at the cap: rdflib is pure Python,
    so the signal lands between two bytecodes), write times and bodies."""
    import rdflib

    started = time.perf_counter()
    dataset = rdflib.Dataset(default_union=True)
    dataset.parse(str(nquads), format="nquads")
    load_s = time.perf_counter() - started
    signal.signal(signal.SIGALRM, _alarm)
    found: dict[str, Any] = {"load_s": load_s, "quads": len(dataset), "digest": queries_digest(), "cap": cap,
                             "queries": {}}  # fmt: skip
    for name, query in QUERIES.items():
        times: list[float] = []
        body = b""
        for _ in range(runs):
            signal.setitimer(signal.ITIMER_REAL, cap)
            try:
                began = time.perf_counter()
                body = dataset.query(query).serialize(format="json") or b""
                times.append((time.perf_counter() - began) * 1000)
            except Capped:
                break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if times[-1] > cap * 1000 / 4:  # slow: one run says enough
                break
        found["queries"][name] = {"ms": times, "body": body.decode() if times else ""}
        print(f"rdflib {name}: {times or f'> {cap:g} s'}", file=sys.stderr, flush=True)
    found["hwm_kb"] = proc_status(__import__("os").getpid()).get("VmHWM", 0)
    out.write_text(json.dumps(found), encoding="utf-8")


def run_rdflib(data: Region, cap: float, runs: int, reuse: bool) -> dict[str, Any]:
    """rdflib's figures; with `reuse`, those of the last run on the same quads and queries
    (rdflib does not depend on the node's code, and it takes ten minutes)."""
    out = OUT / "sparql-rdflib.json"
    if reuse and out.exists():
        saved: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        if saved.get("quads") == data.quads and saved.get("digest") == queries_digest() and saved.get("cap") == cap:
            return saved
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "bench.bench_sparql", "--rdflib-worker", str(data.nquads), str(out),
            "--rdflib-cap", str(cap), "--runs", str(runs)]  # fmt: skip
    subprocess.run(argv, timeout=3600 + cap * runs * len(QUERIES), check=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


# -- ours against bare -----------------------------------------------------------------------


def run(scale: float, runs: int, cap: float, skip_rdflib: bool, reuse_rdflib: bool) -> SparqlResult:
    data = region(scale)
    port = free_port()
    env = {"OSCARTES_SPARQL_TIMEOUT": str(int(cap))}  # the research queries may take longer than 10 s
    # Opened as the node opens its own (read-write): a read-only RocksDB answered 1.3-2x slower.
    store = ox.Store(str(data.bare_store))
    times: dict[str, dict[str, list[float]]] = {n: {"ours": [], "bare": []} for n in QUERIES}
    shapes: dict[str, tuple[int, float, list[Any]]] = {}
    try:
        with node_server(data.config.data_dir, port, name="sparql-node", env=env) as server:
            client = KeepAlive(port, timeout=cap + 30)
            for name, query in QUERIES.items():  # first the answers, which also warms both up
                _, served = ours(client, query)
                _, direct = bare(store, query)
                if rows_of(served) != rows_of(direct):
                    raise AssertionError(f"{name}: the endpoint and bare Oxigraph disagree "
                                         f"({len(rows_of(served))} rows against {len(rows_of(direct))})")  # fmt: skip
                shapes[name] = (len(rows_of(served)), len(served) / 1024, rows_of(direct))
                print(f"  {name}: {shapes[name][0]} rows, same on both sides", flush=True)
            for n in range(runs):  # interleaved, so that other load on the machine hits both sides
                for name, query in QUERIES.items():
                    for side in ("ours", "bare") if n % 2 == 0 else ("bare", "ours"):  # neither always first
                        took = ours(client, query)[0] if side == "ours" else bare(store, query)[0]
                        times[name][side].append(took)
            client.close()
            node_hwm = proc_status(server.pid).get("VmHWM", 0) / 1024
    finally:
        del store
    rdflib: dict[str, Any] = ({"load_s": 0.0, "hwm_kb": 0, "queries": {}} if skip_rdflib
                              else run_rdflib(data, cap, 3, reuse_rdflib))  # fmt: skip
    result = SparqlResult(data.sizes, data.counts, data.quads, round(data.seconds, 1), data.cached, runs, cap,
                          round(rdflib["load_s"], 1), rdflib["hwm_kb"] / 1024, node_hwm)  # fmt: skip
    for name in QUERIES:
        mine, theirs = times[name]["ours"], times[name]["bare"]
        answered = rdflib["queries"].get(name, {"ms": [], "body": ""})
        lib_ms = percentile(answered["ms"], 50) if answered["ms"] else None
        agrees = None if lib_ms is None else sorted(rows_of(answered["body"].encode())) == sorted(shapes[name][2])
        ratio = (lib_ms if lib_ms is not None else cap * 1000) / percentile(mine, 50)
        result.queries.append(QueryFigures(
            name, shapes[name][0], round(shapes[name][1], 1), percentile(mine, 50), percentile(mine, 90),
            percentile(theirs, 50), percentile(theirs, 90), percentile(mine, 50) / percentile(theirs, 50),
            lib_ms, ratio, agrees, percentile(mine, 50) / percentile(theirs, 50) <= TARGET_BARE,
            ratio >= TARGET_RDFLIB))  # fmt: skip
    return result


def report(r: SparqlResult) -> None:
    source = "cached" if r.generation_cached else "generated now"
    kinds = {k: sum(c.get(k, 0) for c in r.counts.values()) for k in r.sizes}
    print(f"SPARQL: {', '.join(f'{v:,} {k}s' for k, v in kinds.items())} on {len(r.counts)} graphs, "
          f"{r.quads:,} quads ({source}; {r.generation_s:.0f} s); {r.runs} runs a query")  # fmt: skip
    for q in r.queries:
        print(f"  {q.name} ({q.rows} rows, {q.body_kb:,.0f} kB of JSON)")
        print(row("ours p50 / p90", q.ours_p50_ms, f"ms / {q.ours_p90_ms:,.1f} ms"))
        print(row("bare pyoxigraph p50 / p90", q.bare_p50_ms, f"ms / {q.bare_p90_ms:,.1f} ms"))
        lib = f"{q.rdflib_ms:,.0f} ms" if q.rdflib_ms is not None else f"> {r.rdflib_cap_s:g} s (stopped)"
        print(f"  {'rdflib':<44} {lib:>12}" + ("" if q.rdflib_agrees in (None, True) else "  ROWS DIFFER"))
        print(row("ratio ours / bare (p50)", q.ratio_to_bare, f"x  target <= {TARGET_BARE}: "
                  f"{'met' if q.target_bare_met else 'MISSED'}"))  # fmt: skip
        print(row("ratio rdflib / ours (p50)", q.ratio_rdflib, f"x{' or more' if q.rdflib_ms is None else ''}  "
                  f"target >= {TARGET_RDFLIB:g}: {'met' if q.target_rdflib_met else 'MISSED'}"))  # fmt: skip
    print(f"  rdflib: loaded in {r.rdflib_load_s:,.0f} s, VmHWM {r.rdflib_hwm_mb:,.0f} MB; "
          f"node VmHWM {r.node_hwm_mb:,.0f} MB")  # fmt: skip


def main(argv: list[str] | None = None) -> SparqlResult | None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the region's sizes (default 1)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query on each side")
    parser.add_argument("--rdflib-cap", type=float, default=120.0, help="seconds before an rdflib query is stopped")
    parser.add_argument("--no-rdflib", action="store_true", help="skip rdflib (it takes minutes and gigabytes)")
    parser.add_argument("--reuse-rdflib", action="store_true", help="rdflib's figures of the last run, if the "
                        "quads, queries and cap are the same")  # fmt: skip
    parser.add_argument("--rdflib-worker", nargs=2, metavar=("NQUADS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.rdflib_worker:
        rdflib_worker(Path(args.rdflib_worker[0]), Path(args.rdflib_worker[1]), args.rdflib_cap, args.runs)
        return None
    result = run(args.scale, args.runs, args.rdflib_cap, args.no_rdflib, args.reuse_rdflib)
    report(result)
    write_json(args.json, "sparql", result)
    return result


if __name__ == "__main__":
    main()
