"""GET of one record as AS2 JSON and as Turtle, under wrk, against an aiohttp "hello world".

The node is a real `oscartes serve` process (one process) on a folder made by `oscartes
init` + `oscartes demo`; the baseline is bench/hello.py, its own process too. Both get the
same wrk settings after the same warm-up, one after the other, on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    HOST,
    OUT,
    WrkResult,
    free_port,
    hello_server,
    http_get,
    node_server,
    oscartes,
    require_wrk,
    rotating_script,
    row,
    run_wrk,
    write_json,
)
from bench.synth import dataset, sample_slugs
from node.cli import demo_documents

FORMATS = {"as2": "application/activity+json", "turtle": "text/turtle"}
DEMO = OUT / "get-demo"


def demo_record() -> str:
    """Path of the demo initiative with the most needs and offers (the fullest document)."""
    owners = Counter(str(d["doc"].get("attributedTo", "")) for d in demo_documents()
                     if d["collection"] in ("needs", "offers"))  # fmt: skip
    initiatives = [str(d["doc"]["id"]) for d in demo_documents() if d["collection"] == "initiatives"]
    return "/" + max(initiatives, key=lambda iri: (owners[iri], iri))


def prepare() -> str:
    """A fresh demo node: documents rendered by the code under test, not by an older one."""
    if DEMO.exists():
        shutil.rmtree(DEMO)
    oscartes("init", "--data", str(DEMO), "--base-url", f"http://{HOST}:8000")
    oscartes("demo", "--data", str(DEMO))
    return demo_record()


@dataclass
class GetResult:
    record: str
    wrk: str
    rounds: int
    loadavg_before: str
    #: records the "spread" targets cycle through, out of n synthetic initiatives (0: not run)
    spread: int
    n: int
    #: the round with the median requests/s, per target: "hello", "as2", "turtle" (one demo
    #: record), "as2 spread", "turtle spread" (cycling through many records of the big folder)
    median: dict[str, dict[str, Any]]
    #: per node target, median over rounds of (node requests/s) / (hello requests/s) in the same round
    rps_ratio: dict[str, float]
    #: per node target, median over rounds of (node p50 latency) / (hello p50 latency) in the same round
    p50_ratio: dict[str, float]
    p99_ratio: dict[str, float]
    every_round: dict[str, list[dict[str, Any]]]


def check(url: str, accept: str, expected: str) -> None:
    status, headers, body = http_get(url, accept)
    kind = headers.get("Content-Type", "")
    if status != 200 or expected not in kind:
        raise RuntimeError(f"GET {url} ({accept}) answered {status} {kind}: {body[:300]!r}")


def run(args: argparse.Namespace) -> GetResult:
    """Every server up at once, each target measured in turn for a few rounds: drift from other
    load on the machine hits both sides of a round's ratio alike."""
    require_wrk()
    path = prepare()
    settings = f"wrk --latency -t{args.threads} -c{args.connections} -d{args.duration:g}s (after -d{args.warmup:g}s)"
    loadavg = Path("/proc/loadavg").read_text().strip()
    hello_port, node_port, big_port = free_port(), free_port(), free_port()
    rounds: dict[str, list[WrkResult]] = {}
    with contextlib.ExitStack() as stack:
        hello = stack.enter_context(hello_server(hello_port))
        node = stack.enter_context(node_server(DEMO, node_port))
        targets: list[tuple[str, str, str, Path | None]] = [("hello", hello.url("/"), "*/*", None)]
        for fmt, accept in FORMATS.items():
            check(node.url(path), accept, accept)
            targets.append((fmt, node.url(path), accept, None))
        if args.n:
            data = dataset(args.n).config.data_dir
            slugs = sample_slugs(data / "oscartes.sqlite3", args.spread)
            script = rotating_script([f"/initiatives/{s}" for s in slugs], "spread")
            big = stack.enter_context(node_server(data, big_port, name="node-spread"))
            for fmt, accept in FORMATS.items():
                check(big.url(f"/initiatives/{slugs[0]}"), accept, accept)
                targets.append((f"{fmt} spread", big.url("/"), accept, script))
        for _, url, accept, lua in targets:
            run_wrk(url, accept, args.threads, args.connections, args.warmup, lua)
        for _ in range(args.rounds):  # bounded: rounds x targets runs of wrk, each with its -d
            for name, url, accept, lua in targets:
                result = run_wrk(url, accept, args.threads, args.connections, args.duration, lua)
                rounds.setdefault(name, []).append(result)

    def ratio(name: str, key: str) -> float:
        pairs = zip(rounds[name], rounds["hello"], strict=True)
        return float(statistics.median(getattr(n, key) / getattr(h, key) for n, h in pairs))

    median = {name: asdict(sorted(rs, key=lambda r: r.requests_per_s)[len(rs) // 2]) for name, rs in rounds.items()}
    nodes = [name for name in rounds if name != "hello"]
    return GetResult(
        record=path, wrk=settings, rounds=args.rounds, loadavg_before=loadavg, spread=args.spread if args.n else 0,
        n=args.n, median=median,
        rps_ratio={name: ratio(name, "requests_per_s") for name in nodes},
        p50_ratio={name: ratio(name, "p50_ms") for name in nodes},
        p99_ratio={name: ratio(name, "p99_ms") for name in nodes},
        every_round={name: [asdict(r) for r in rs] for name, rs in rounds.items()},
    )  # fmt: skip


def report(r: GetResult) -> None:
    print(f"GET {r.record} on a demo node vs an aiohttp hello world; {r.wrk}, {r.rounds} rounds")
    if r.spread:
        print(f"  'spread': GETs cycling through {r.spread:,} of {r.n:,} synthetic initiatives (a crawler)")
    print(f"  load average before: {r.loadavg_before}")
    for name, figures in r.median.items():
        per_round = ", ".join(f"{x['requests_per_s']:,.0f}" for x in r.every_round[name])
        print(row(f"{name}: requests/s (median round)", figures["requests_per_s"]) + f"   rounds: {per_round}")
        print(row(f"{name}: p50", figures["p50_ms"], "ms"))
        print(row(f"{name}: p99", figures["p99_ms"], "ms"))
        errors = sum(x["errors"] + x["non_2xx"] for x in r.every_round[name])
        if errors:
            print(f"  {name}: {errors} socket errors or non-2xx answers")
    for name in r.rps_ratio:
        print(row(f"ratio node {name}/hello requests/s", r.rps_ratio[name]))
        print(row(f"ratio node {name}/hello p50 latency", r.p50_ratio[name], "x"))


def main(argv: list[str] | None = None) -> GetResult:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs of each target, interleaved")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of the wrk run before each")
    parser.add_argument(
        "--n",
        type=int,
        default=100_000,
        help="synthetic initiatives of the 'spread' targets (default 100000; 0: skip them)",
    )
    parser.add_argument("--spread", type=int, default=20_000, help="records the 'spread' targets cycle through")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run(args)
    report(result)
    write_json(args.json, "get", result)
    return result


if __name__ == "__main__":
    main()
