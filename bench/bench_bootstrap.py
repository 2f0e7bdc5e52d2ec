"""Bootstrap: a follower node copies a node holding N initiatives (10,000; 100,000 on request).

Two real `oscartes serve` processes on loopback: the origin B (127.0.0.2) serves the
synthetic folder built for its URL, the follower A (127.0.0.3) starts empty and is told to
follow B (`POST /api/follows`, admin token). A's sync worker then pages through B's change
stream, reads each page (JSON-LD expansion, SHACL) and stores the records in SQL and in its
RDF index. The benchmark reads A's SQLite file (read-only) until it holds all N records,
then until its RDF index has caught up.

Two floors in the same run, before the follow: a plain HTTP download of B's N-Quads dump
(`/dataset.nq`, the same records as one stream), and a plain download of every page of the
change stream (same page size as the sync worker, JSON parsed, nothing stored), which splits
the copy into transfer and ingestion. Peak RSS is VmHWM of both server processes (and,
apart, of their child processes: the follower's page reader).
Target: 10,000 initiatives copied in at most 30 s.

The helpers at the top (a node process on a loopback address, its admin token, read-only
looks at its database) are shared with bench_propagation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import OUT, _stop, code_version, machine, oscartes, oscartes_command, proc_status, row, write_json
from bench.synth import dataset

PRIVATE = {"OSCARTES_ALLOW_PRIVATE_ADDRESSES": "1"}
ORIGIN_HOST, FOLLOWER_HOST = "127.0.0.2", "127.0.0.3"
#: the origin's URL is in every record IRI of its cached folder, so its port is fixed
ORIGIN_PORT = 18702
TARGET_S = {10_000: 30.0}
#: the sync worker's page size (the change stream's default)
PAGE = 200
BIG = 100_000
BIG_ENV = "OSCARTES_BENCH_BOOTSTRAP_BIG"


# -- nodes on loopback addresses ------------------------------------------------------------


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def init_node(data: Path, base: str) -> str:
    """`oscartes init` (when the folder is new), then an admin token."""
    if not (data / "node.toml").exists():
        oscartes("init", "--data", str(data), "--base-url", base)
    return oscartes("token", "create", "--data", str(data), "--role", "admin", "--label", "bench")


@dataclass
class Node:
    name: str
    data: Path
    base: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    ready_status: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def database(self) -> Path:
        return self.data / "oscartes.sqlite3"

    @property
    def graph(self) -> str:
        return f"{self.base}/dataset"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def hwm_kb(self) -> int:
        return proc_status(self.pid).get("VmHWM", 0)

    def children_hwm_kb(self) -> int:
        """VmHWM summed over the server's child processes alive now (a reader process, say)."""
        return sum(proc_status(pid).get("VmHWM", 0) for pid in descendants(self.pid))

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log.exists() else ""

    def problems(self, limit: int = 8) -> list[str]:
        """The log's warnings and errors (the node logs refused records and failed copies there)."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        found = [line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        return [line[:600] for line in found[:limit]]


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, from /proc (each /proc/N/stat names its parent)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def _get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


@contextlib.contextmanager
def serving(name: str, data: Path, base: str, token: str, env: Mapping[str, str] | None = None,
            timeout: float = 300.0) -> Iterator[Node]:  # fmt: skip
    """`oscartes serve` on the host and port of `base`, until the block ends (always stopped)."""
    host, _, port = base.removeprefix("http://").partition(":")
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{name}.log"
    argv = [*oscartes_command(), "serve", "--data", str(data), "--host", host, "--port", port]
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                   env={**os.environ, **PRIVATE, **(env or {})})  # fmt: skip
        node = Node(name, data, base, token, process, log)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{node.log_tail()}")
                with contextlib.suppress(OSError):
                    if _get(f"{base}/ns/context.jsonld", 2.0) == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready on {base} after {timeout:.0f}s:\n{node.log_tail()}")
                time.sleep(0.1)
            node.ready_status = proc_status(process.pid)
            yield node
        finally:
            _stop(process)


def read_only(database: Path) -> sqlite3.Connection:
    """A read-only connection to a running node's SQLite file (WAL: it does not block the node)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    return conn


def scalar(conn: sqlite3.Connection, sql: str, *args: Any) -> Any:
    for attempt in range(20):
        try:
            found = conn.execute(sql, args).fetchone()
            return found[0] if found else None
        except sqlite3.OperationalError:  # a checkpoint or a schema change at that instant
            if attempt == 19:
                raise
            time.sleep(0.05)
    return None


def origin_state(conn: sqlite3.Connection, graph: str) -> dict[str, Any]:
    """The follower's row for an origin (its sync state and last error), {} if none yet."""
    found = conn.execute("SELECT sync_state, state, attempts, last_error FROM origins WHERE graph = ?",
                         (graph,)).fetchone()  # fmt: skip
    if found is None:
        return {}
    return {"sync": found[0], "state": found[1], "attempts": found[2], "error": found[3]}


def ingest_reports(conn: sqlite3.Connection, graph: str, limit: int = 5) -> tuple[int, list[str]]:
    count = int(scalar(conn, "SELECT count(*) FROM ingest_reports WHERE origin = ?", graph) or 0)
    rows = conn.execute("SELECT iri, reason FROM ingest_reports WHERE origin = ? ORDER BY id LIMIT ?",
                        (graph, limit)).fetchall()  # fmt: skip
    return count, [f"{iri}: {reason[:400]}" for iri, reason in rows]


async def api(http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> Any:
    """One authoring-API call; an error answer raises with the node's problem+json detail."""
    async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        text = await response.text()
        if response.status >= 300:
            raise RuntimeError(f"{method} {url} answered {response.status}: {text[:2000]}")
        return json.loads(text) if text else None


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


# -- the floors -----------------------------------------------------------------------------


async def download_dump(http: aiohttp.ClientSession, origin: str) -> dict[str, Any]:
    """The whole N-Quads dump, as a plain HTTP client reads it (bytes counted, nothing parsed)."""
    started = time.perf_counter()
    size = lines = 0
    async with http.get(f"{origin}/dataset.nq") as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "bytes": size, "quads": lines, "mb_per_s": round(size / 1e6 / seconds, 1)}


async def download_pages(http: aiohttp.ClientSession, origin: str, limit: int = PAGE) -> dict[str, Any]:
    """Every page of the change stream, following `next` as the sync worker does, JSON parsed
    (as its client does), nothing expanded, checked or stored."""
    started = time.perf_counter()
    url: str | None = f"{origin}/dataset/changes?since=1970-01-01T00:00:00Z&limit={limit}"
    pages = items = size = 0
    headers = {"Accept": "application/activity+json"}
    while url is not None:
        async with http.get(url, headers=headers) as response:
            response.raise_for_status()
            body = await response.read()
        page = json.loads(body)
        size += len(body)
        pages += 1
        items += len(page.get("orderedItems", []))
        url = page.get("next")
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "pages": pages, "records": items, "bytes": size,
            "records_per_s": round(items / seconds, 1)}  # fmt: skip


# -- the copy -------------------------------------------------------------------------------


def watch_copy(follower: Node, origin: Node, n: int, started: float, timeout: float,
               stall: float) -> dict[str, Any]:  # fmt: skip
    """Poll the follower's database until it holds the N records and has indexed them; fail
    with the node's own error text when the copy stops moving."""
    conn = read_only(follower.database)
    graph = origin.graph
    first = held_at = indexed_at = live_at = None
    last_count, last_move = -1, time.monotonic()
    samples: list[tuple[float, int]] = []
    try:
        while True:
            now = time.monotonic()
            # ix_records_origin covers this count (2 ms at 10,000, 22 ms at 100,000); a condition on
            # deleted_at would read every row (220 ms at 100,000): a copy brings no deletion.
            count = int(scalar(conn, "SELECT count(*) FROM records WHERE origin = ?", graph))
            pending = int(scalar(conn, "SELECT count(*) FROM index_jobs WHERE graph = ? AND state = 'pending'", graph))
            state = origin_state(conn, graph)
            elapsed = now - started
            if count and first is None:
                first = elapsed
            if count >= n and held_at is None:
                held_at = elapsed
            if state.get("sync") == "live" and live_at is None:
                live_at = elapsed
            if held_at is not None and pending == 0:
                indexed_at = elapsed
                break
            if count != last_count:
                samples.append((round(elapsed, 2), count))
                last_count, last_move = count, now
            for proc, name in ((follower.process, follower.name), (origin.process, origin.name)):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited during the copy ({proc.returncode})")
            if now - last_move > stall and held_at is None:
                refused, reasons = ingest_reports(conn, graph)
                raise RuntimeError(
                    f"the copy is stuck at {count}/{n} records for {stall:.0f}s; origin row {state}; "
                    f"{refused} refused, e.g. {reasons}; follower log: {follower.problems()}"
                )
            if elapsed > timeout:
                raise TimeoutError(f"{count}/{n} records, {pending} index jobs pending after {timeout:.0f}s; "
                                   f"origin row {state}")  # fmt: skip
            time.sleep(0.5)
        refused, reasons = ingest_reports(conn, graph)
        failed_jobs = int(scalar(conn, "SELECT count(*) FROM index_jobs WHERE graph = ? AND state = 'failed'", graph))
        final = origin_state(conn, graph)
    finally:
        conn.close()
    assert held_at is not None and indexed_at is not None
    return {"first_record_s": round(first or 0.0, 3), "all_in_sql_s": round(held_at, 3),
            "indexed_s": round(indexed_at, 3), "live_s": round(live_at, 3) if live_at is not None else None,
            "held": count, "refused": refused, "refused_examples": reasons, "failed_index_jobs": failed_jobs,
            "origin_row": final, "progress": samples[:: max(1, len(samples) // 40)]}  # fmt: skip


async def floors(origin: str) -> tuple[dict[str, Any], dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await download_pages(http, origin, 50)  # warm: the node's first SQL reads, the OS cache
        dump = await download_dump(http, origin)
        pages = await download_pages(http, origin)
    return dump, pages


async def follow(follower: Node, origin: Node) -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        return await api(http, "POST", f"{follower.base}/api/follows", follower.token, {"target": origin.base})


def run(n: int, origin_port: int, timeout: float, stall: float, keep: bool) -> dict[str, Any]:
    origin_base = f"http://{ORIGIN_HOST}:{origin_port}"
    if not port_is_free(ORIGIN_HOST, origin_port):
        raise SystemExit(f"{ORIGIN_HOST}:{origin_port} is taken: give another --origin-port "
                         "(the synthetic folder is then built for it)")  # fmt: skip
    built = time.perf_counter()
    source = dataset(n, origin_base)
    print(f"N={n:,}: synthetic folder {'cached' if source.cached else 'built'} "
          f"({time.perf_counter() - built:.0f} s): {source.config.data_dir}", flush=True)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix=f"oscartes-bootstrap-{n}-"))
    try:
        # The origin gets follow rows: it runs on a copy, so that the cache stays as built.
        origin_data = work / "origin"
        shutil.copytree(source.config.data_dir, origin_data)
        follower_base = f"http://{FOLLOWER_HOST}:{free_port(FOLLOWER_HOST)}"
        follower_data = work / "follower"
        follower_token = init_node(follower_data, follower_base)
        with (
            serving(f"bootstrap-origin-{n}", origin_data, origin_base, "") as origin,
            serving(f"bootstrap-follower-{n}", follower_data, follower_base, follower_token) as follower,
        ):
            print("  floors: N-Quads dump, then every change-stream page...", flush=True)
            dump, pages = asyncio.run(floors(origin.base))
            print(f"  follow: {follower.base} follows {origin.base}...", flush=True)
            started = time.monotonic()
            asyncio.run(follow(follower, origin))
            copy = watch_copy(follower, origin, n, started, timeout, stall)
            rss = {role: {"ready_mb": mb(node_.ready_status.get("VmHWM", 0)), "hwm_mb": mb(node_.hwm_kb()),
                          "children_hwm_mb": mb(node_.children_hwm_kb())}
                   for role, node_ in (("origin", origin), ("follower", follower))}  # fmt: skip
            problems = follower.problems()
    finally:
        if keep:
            print(f"  kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    seconds = copy["all_in_sql_s"]
    target = TARGET_S.get(n)
    return {
        "n": n, "copy": copy, "seconds": seconds, "records_per_s": round(n / seconds, 1),
        "indexed_records_per_s": round(n / copy["indexed_s"], 1),
        "nquads_download": dump, "pages_download": pages,
        "ratio_to_nquads": round(seconds / dump["seconds"], 1), "ratio_to_pages": round(seconds / pages["seconds"], 1),
        "ingest_share": round(max(0.0, seconds - pages["seconds"]) / seconds, 3),
        "rss_mb": rss, "follower_log_problems": problems,
        "target_s": target, "target_met": (seconds <= target) if target else None,
    }  # fmt: skip


def report(r: dict[str, Any]) -> None:
    copy, dump, pages = r["copy"], r["nquads_download"], r["pages_download"]
    print(f"\nBootstrap of {r['n']:,} initiatives")
    print(row("follow -> all records in the follower's SQL", r["seconds"], "s"))
    print(row("  records/s", r["records_per_s"]))
    print(row("  first record after", copy["first_record_s"], "s"))
    print(row("follow -> RDF index caught up", copy["indexed_s"], "s"))
    print(row("floor: GET /dataset.nq (plain download)", dump["seconds"], f"s ({dump['bytes'] / 1e6:,.1f} MB)"))
    print(row(f"floor: {pages['pages']} change-stream pages, no ingest", pages["seconds"],
              f"s ({pages['bytes'] / 1e6:,.1f} MB, {pages['records_per_s']:,.0f} records/s)"))  # fmt: skip
    print(row("copy / N-Quads download", r["ratio_to_nquads"], "x"))
    print(row("copy / change-stream download", r["ratio_to_pages"], "x"))
    for name, figures in r["rss_mb"].items():
        print(row(f"VmHWM {name} (ready -> peak)", figures["hwm_mb"], f"MB (ready {figures['ready_mb']} MB)"))
        if figures.get("children_hwm_mb"):
            print(row(f"VmHWM {name}'s child processes", figures["children_hwm_mb"], "MB"))
    print(f"  refused records: {copy['refused']}; failed index jobs: {copy['failed_index_jobs']}")
    if r["target_s"]:
        print(f"  target <= {r['target_s']:.0f} s: {'met' if r['target_met'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="initiatives held by the origin (repeatable; "
                        "default 10000, plus 100000 with --big)")  # fmt: skip
    parser.add_argument("--big", action="store_true", default=os.environ.get(BIG_ENV, "") == "1",
                        help=f"also copy {BIG:,} initiatives (minutes; env {BIG_ENV}=1)")  # fmt: skip
    parser.add_argument("--origin-port", type=int, default=ORIGIN_PORT)
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds per copy (default: 120 + N/10)")
    parser.add_argument("--stall", type=float, default=180.0, help="fail when no record arrives for this long")
    parser.add_argument("--keep", action="store_true", help="keep the two nodes' folders (under /tmp)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args(argv)
    sizes = args.n or [10_000]
    if args.big and BIG not in sizes:
        sizes.append(BIG)
    runs = []
    code = code_version()  # at the start: the tree may change while a long run goes on
    for n in sizes:
        result = run(n, args.origin_port, args.timeout or 120 + n / 10, args.stall, args.keep)
        report(result)
        runs.append(result)
    result_doc = {"benchmark": "bootstrap", "machine": machine(), "code_at_start": code, "runs": runs}
    print(json.dumps(result_doc, indent=2))
    write_json(args.json, "bootstrap", {"code_at_start": code, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
