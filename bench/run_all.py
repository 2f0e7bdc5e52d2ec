"""Run the benchmarks, each in its own process, then print a summary and write
bench/out/results.json. `make bench` runs this. The bootstrap copies 10,000 initiatives;
with OSCARTES_BENCH_BOOTSTRAP_BIG=1 also 100,000 (tens of minutes). The SPARQL, HTTP search and
concurrency benchmarks run on the three-node region of bench/region.py, whatever --n says."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, code_version, machine

#: name -> (module, takes --n, time limit in seconds)
BENCHES = {
    "get": ("bench.bench_get", False, 900),
    "search": ("bench.bench_search", True, 3600),
    "memory": ("bench.bench_memory", True, 1800),
    "inbox": ("bench.bench_inbox", False, 1800),
    "fanout": ("bench.bench_fanout", False, 900),
    "bootstrap": ("bench.bench_bootstrap", False,
                  14_400 if os.environ.get("OSCARTES_BENCH_BOOTSTRAP_BIG") == "1" else 1800),
    "propagation": ("bench.bench_propagation", False, 1800),
    # The region (bench/region.py) is built by the first of these that needs it: about 7 min.
    "sparql": ("bench.bench_sparql", False, 3600),
    "search_http": ("bench.bench_search_http", False, 1800),
    "concurrency": ("bench.bench_concurrency", False, 1800),
}  # fmt: skip


def run_one(name: str, n: int) -> dict[str, Any]:
    module, takes_n, limit = BENCHES[name]
    out = OUT / f"{name}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", module, "--json", str(out), *(["--n", str(n)] if takes_n else [])]
    print(f"\n=== {name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(argv, timeout=limit, check=False)
    if done.returncode != 0 or not out.exists():
        return {"failed": f"exit status {done.returncode}", "seconds": time.monotonic() - started}
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["seconds"] = time.monotonic() - started
    return result


def met(flag: bool) -> str:
    return "met" if flag else "MISSED"


def summary(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, node, baseline, ratio, target) lines."""
    lines = []
    get = results.get("get", {})
    if "median" in get:
        hello = get["median"]["hello"]
        for fmt in get["rps_ratio"]:
            figures = get["median"][fmt]
            lines.append((
                f"GET record ({fmt})",
                f"{figures['requests_per_s']:,.0f} req/s, p50 {figures['p50_ms']:.2f}, p99 {figures['p99_ms']:.2f} ms",
                f"hello {hello['requests_per_s']:,.0f} req/s, p50 {hello['p50_ms']:.2f} ms",
                f"{get['rps_ratio'][fmt]:.3f} of hello's req/s; p50 x{get['p50_ratio'][fmt]:.1f}",
                "(figures only)",
            ))  # fmt: skip
    search = results.get("search", {})
    if "search_p50_ms" in search:
        lines.append((
            f"search bbox+theme+text, N={search['n']:,}",
            f"p50 {search['search_p50_ms']:.1f} ms, p99 {search['search_p99_ms']:.1f} ms",
            f"SPARQL p50 {search['sparql_p50_ms']:,.0f} ms, p99 {search['sparql_p99_ms']:,.0f} ms",
            f"x{search['ratio_p50']:.0f} faster (p50)",
            f">=50x: {met(search['target_ratio_met'])}; p50<=20 ms: {met(search['target_p50_met'])}",
        ))  # fmt: skip
    memory = results.get("memory", {})
    if "hwm_end_mb" in memory:
        lines.append((
            f"memory of serve, N={memory['n']:,}",
            f"VmHWM {memory['hwm_end_mb']:.0f} MB after {memory['requests']} requests",
            f"{memory['hwm_started_mb']:.0f} MB once ready",
            "",
            f"<=500 MB: {met(memory['target_met'])}",
        ))  # fmt: skip
    inbox = results.get("inbox", {})
    if "acceptance" in inbox:
        accept, floor = inbox["acceptance"]["node"], inbox["acceptance"]["floor"]
        for layout, figures in accept.items():
            lines.append((
                f"inbox acceptance ({layout})",
                f"{figures['requests_per_s']:,.0f} signed POST/s, p50 {figures['p50_ms']:.1f} ms",
                f"parse+verify floor {floor['requests_per_s']:,.0f}/s",
                f"{figures['ratio']:.2f} of the floor",
                f">=2,000/s and >=35%: {met(figures['target_met'])}",
            ))  # fmt: skip
        proc = inbox["processing"]
        lines.append((
            "inbox processing (JSON-LD + apply)", f"{proc['worker_per_s']:,.0f} activities/s",
            f"bare pyld {proc['bare_pyld_per_s']:,.0f}/s", f"{proc['ratio']:.2f} of bare expansion",
            f">=50%: {met(proc['target_met'])}",
        ))  # fmt: skip
    fanout = results.get("fanout", {})
    if "delivery_s" in fanout:
        lines.append((
            f"fan-out: {fanout['followers']:,} followers, {fanout['shared_inboxes']:,} inboxes",
            f"{fanout['delivery_s']:.2f} s until all delivered", f"{fanout['deliveries']:,} RSA signatures: "
            f"{fanout['signatures_floor_s']:.2f} s", f"x{fanout['ratio_to_floor']:.2f} the floor",
            f"<=4x: {met(fanout['target_met'])}",
        ))  # fmt: skip
    for run in results.get("bootstrap", {}).get("runs", []):
        rss = run["rss_mb"]
        lines.append((
            f"bootstrap copy, N={run['n']:,}",
            f"{run['seconds']:.1f} s, {run['records_per_s']:,.0f} records/s; VmHWM origin "
            f"{rss['origin']['hwm_mb']:.0f} MB, follower {rss['follower']['hwm_mb']:.0f} MB"
            f" (+{rss['follower'].get('children_hwm_mb', 0):.0f} MB its children)",
            f"GET dataset.nq {run['nquads_download']['seconds']:.2f} s; pages alone "
            f"{run['pages_download']['seconds']:.2f} s",
            f"x{run['ratio_to_nquads']:.0f} the dump, x{run['ratio_to_pages']:.0f} the pages",
            f"<={run['target_s']:.0f} s: {met(run['target_met'])}" if run["target_s"] else "(figures only)",
        ))  # fmt: skip
    propagation = results.get("propagation", {})
    relayed, direct = propagation.get("relayed_C_B_A", {}), propagation.get("direct_C_D", {})
    if relayed.get("seen") and direct.get("seen"):
        lines.append((
            f"propagation C->B->A, {propagation['write_rate_achieved']:g} writes/s",
            f"p50 {relayed['p50_ms']:,.0f} ms, p99 {relayed['p99_ms']:,.0f} ms "
            f"({relayed['seen']}/{relayed['written']} seen)",
            f"direct C->D p50 {direct['p50_ms']:,.0f} ms, p99 {direct['p99_ms']:,.0f} ms",
            f"x{relayed['p50_ms'] / max(direct['p50_ms'], 0.1):.1f} the direct p50",
            "(figures only)",
        ))  # fmt: skip
    lines += answers(results)
    for name, result in results.items():
        if "failed" in result:
            lines.append((name, "FAILED", result["failed"], "", ""))
    return lines


def answers(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """Lines of the SPARQL, HTTP search and concurrency benchmarks."""
    lines = []
    sparql = results.get("sparql", {})
    for q in sparql.get("queries", []):
        rdflib = f"{q['rdflib_ms']:,.0f} ms" if q["rdflib_ms"] is not None else f"> {sparql['rdflib_cap_s']:g} s"
        lines.append((
            f"SPARQL {q['name']}", f"p50 {q['ours_p50_ms']:,.0f} ms, p90 {q['ours_p90_ms']:,.0f} ms",
            f"bare pyoxigraph p50 {q['bare_p50_ms']:,.0f} ms; rdflib {rdflib}",
            f"x{q['ratio_to_bare']:.2f} bare; rdflib x{q['ratio_rdflib']:,.0f}"
            + ("+" if q["rdflib_ms"] is None else ""),
            f"<=1.3x: {met(q['target_bare_met'])}; >=20x: {met(q['target_rdflib_met'])}",
        ))  # fmt: skip
    search = results.get("search_http", {})
    if "http_p50_ms" in search:
        lines.append((
            f"GET /search, {search['queries']:,} mixed questions",
            f"p50 {search['http_p50_ms']:.1f}, p99 {search['http_p99_ms']:.1f}, max {search['http_max_ms']:.0f} ms",
            f"in process p50 {search['inprocess_p50_ms']:.1f}, p99 {search['inprocess_p99_ms']:.1f} ms", "",
            f"p50<=20 ms: {met(search['target_p50_met'])}; p99<=100 ms: {met(search['target_p99_met'])}",
        ))  # fmt: skip
    busy = results.get("concurrency", {})
    if "ratio" in busy and busy.get("rounds"):
        lines.append((
            f"search p99, {busy['clients']} clients + 1 heavy SPARQL", f"{busy['loaded_p99_ms']:.1f} ms",
            f"idle {busy['idle_p99_ms']:.1f} ms", f"x{busy['ratio']:.2f} idle", f"<=2x: {met(busy['target_met'])}",
        ))  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="synthetic initiatives (default 100000)")
    parser.add_argument("--saved", action="store_true", help="run nothing: summarise the last saved figures")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="run only these (repeatable)")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHES)
    if args.saved:
        results = {name: json.loads((OUT / f"{name}.json").read_text(encoding="utf-8")) for name in names}
    else:
        results = {name: run_one(name, args.n) for name in names}
    lines = summary(results)
    head = ("benchmark", "node", "baseline", "ratio", "target")
    widths = [max(len(str(line[i])) for line in [head, *lines]) for i in range(len(head))]
    print("\n=== summary")
    for line in [head, *lines]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    path = Path(OUT / "results.json")
    summary_doc = {"machine": machine(), "code": code_version(), "n": args.n, "results": results}
    path.write_text(json.dumps(summary_doc, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {path}")
    return 1 if any("failed" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
