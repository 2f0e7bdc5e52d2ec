"""Live propagation: writes at one node, the delay until another node two hops away holds them.

Four real `oscartes serve` processes on loopback: C (127.0.0.2) where the writes happen;
B (127.0.0.3) follows C and relays C's news (`PATCH /api/origins {"relay": true}`); A
(127.0.0.4) follows B only, so C's records reach it by relay (B's Announce; A fetches the
record from C itself, as a relayed activity is never believed). The baseline, in the same run
and for the same writes: D (127.0.0.4, another port) follows C directly.

The writes: `POST {C}/api/needs` (admin token; `--kind initiatives` for initiatives) asked
at a steady rate (100/s for 25 s by default): the i-th is due at start + i/rate, and starts
then unless `--in-flight` writes are already waiting for C's answer (it then starts as soon
as one returns: C sets the pace it can take, reported as the rate achieved). A thread reads
C's, A's and D's SQLite files (read-only) every 10 ms and notes when each record appears in
each. The delay of a write is from its commit at C (first seen in C's database) to its commit
at A (or D); median and p99 over all writes, those not arrived at the end of the drain counted
apart. The delay from the POST being sent is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_bootstrap import Node, api, free_port, init_node, mb, origin_state, read_only, scalar, serving
from bench.common import code_version, machine, percentile, row, write_json

HOSTS = {"C": "127.0.0.2", "B": "127.0.0.3", "A": "127.0.0.4", "D": "127.0.0.4"}
THEMES = "https://w3id.org/oscartes/vocab/themes/"
NEEDS = "https://w3id.org/oscartes/vocab/needs/"
OWNER = "bench_owner"
WARMUP = 5


def initiative(slug: str, i: int) -> dict[str, Any]:
    """A plain initiative, about the size of the synthetic ones."""
    return {
        "id": f"initiatives/{slug}",
        "type": ["Organization", "pair:Organization", "essglobal:SSEInitiative"],
        "name": f"Atelier vélo n°{i}",
        "summary": "Un atelier participatif où chacun apprend à réparer son vélo, deux soirs par semaine.",
        "pair:homePage": f"https://atelier-{i}.example.org/",
        "pair:hasTopic": [THEMES + "repair"],
        "location": {
            "type": "Place", "name": "Local associatif", "latitude": 48.85 + (i % 100) / 1000,
            "longitude": 2.35 + (i % 77) / 1000,
            "address": {"type": "PostalAddress", "streetAddress": f"{1 + i % 90} rue Pasteur", "postalCode": "75011",
                        "addressLocality": "Paris", "addressCountry": "FR"},
        },  # fmt: skip
        "pair:e-mail": f"contact@atelier-{i}.example.org",
    }


def need(slug: str, i: int) -> dict[str, Any]:
    """A need of the owner initiative, as an initiative's editor posts it."""
    return {
        "id": f"needs/{slug}",
        "type": ["Note", "Proposal"],
        "purpose": "request",
        "name": f"Bénévoles pour l'atelier n°{i}",
        "content": "Nous cherchons des bénévoles qui savent régler des freins et changer une chambre à air.",
        "attributedTo": f"initiatives/{OWNER}",
        "endTime": "2031-03-01T00:00:00Z",
        "publishes": {"type": "Intent", "resourceClassifiedAs": [NEEDS + "volunteers"],
                      "resourceQuantity": {"hasUnit": "http://www.ontology-of-units-of-measure.org/resource/om-2/one",
                                           "hasNumericalValue": 1 + i % 4}},
        "pair:hasTopic": [THEMES + "repair"],
    }  # fmt: skip


DOCS = {"needs": need, "initiatives": initiative}


class Watcher(threading.Thread):
    """Notes when each record IRI first appears in each node's database (new rows, by id)."""

    def __init__(self, nodes: dict[str, Node], every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, dict[str, float]] = {name: {} for name in nodes}
        self.every = every
        self.conns = {name: read_only(node.database) for name, node in nodes.items()}
        self.last_id = {name: int(scalar(conn, "SELECT COALESCE(MAX(id), 0) FROM records"))
                        for name, conn in self.conns.items()}  # fmt: skip
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                for name, conn in self.conns.items():
                    try:
                        rows = conn.execute("SELECT id, iri FROM records WHERE id > ? ORDER BY id",
                                            (self.last_id[name],)).fetchall()  # fmt: skip
                    except sqlite3.OperationalError:
                        continue
                    now = time.monotonic()
                    for ident, iri in rows:
                        self.seen[name].setdefault(iri, now)
                        self.last_id[name] = ident
                time.sleep(self.every)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            for conn in self.conns.values():
                conn.close()


@dataclass
class Write:
    iri: str
    due: float
    sent: float
    acked: float = 0.0
    status: int = 0
    error: str = ""


@dataclass
class Writer:
    c: Node
    http: aiohttp.ClientSession
    kind: str
    writes: list[Write] = field(default_factory=list)

    async def one(self, slug: str, i: int, due: float | None = None) -> None:
        now = time.monotonic()
        write = Write(f"{self.c.base}/{self.kind}/{slug}", due or now, now)
        self.writes.append(write)
        try:
            async with self.http.post(f"{self.c.base}/api/{self.kind}", json=DOCS[self.kind](slug, i),
                                      headers=self.c.auth) as response:  # fmt: skip
                body = await response.read()
                write.status = response.status
                if response.status != 201:
                    write.error = body.decode(errors="replace")[:500]
        except (TimeoutError, aiohttp.ClientError) as exc:
            write.error = repr(exc)
        write.acked = time.monotonic()

    async def steady(self, prefix: str, rate: float, seconds: float, in_flight: int) -> float:
        """The i-th write due at start + i/rate; at most `in_flight` waiting for C at once;
        none started after `seconds`."""
        slots = asyncio.Semaphore(in_flight)
        start = time.monotonic()
        tasks = []

        async def bounded(slug: str, i: int, due: float) -> None:
            try:
                await self.one(slug, i, due)
            finally:
                slots.release()

        for i in range(int(rate * seconds)):
            due = start + i / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            await slots.acquire()
            if time.monotonic() > start + seconds:
                slots.release()
                break
            tasks.append(asyncio.create_task(bounded(f"{prefix}_{i}", i, due)))
        await asyncio.gather(*tasks)
        return time.monotonic() - start


async def wait_for(what: str, check: Any, limit: float, nodes: list[Node]) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        for node in nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited ({node.process.returncode}):\n{node.log_tail()}")
        if time.monotonic() > deadline:
            logs = {n.name: n.problems() for n in nodes}
            raise TimeoutError(f"{what}: not after {limit:.0f}s; warnings in the logs: {logs}")
        await asyncio.sleep(0.2)


def synced(follower: Node, origin: Node) -> Any:
    async def check() -> bool:
        with contextlib.closing(read_only(follower.database)) as conn:
            return origin_state(conn, origin.graph).get("sync") == "live"

    return check


def holds(follower: Node, iris: list[str]) -> Any:
    async def check() -> bool:
        with contextlib.closing(read_only(follower.database)) as conn:
            marks = ",".join("?" * len(iris))
            return int(scalar(conn, f"SELECT count(*) FROM records WHERE iri IN ({marks})", *iris)) == len(iris)

    return check


async def connect(nodes: dict[str, Node], http: aiohttp.ClientSession) -> None:
    """B follows C and relays it, A follows B, D follows C; each waits for its first copy."""
    a, b, c, d = nodes["A"], nodes["B"], nodes["C"], nodes["D"]
    everyone = list(nodes.values())
    await api(http, "POST", f"{b.base}/api/follows", b.token, {"target": c.base})
    await wait_for("B copies C", synced(b, c), 120, everyone)
    await api(http, "PATCH", f"{b.base}/api/origins", b.token, {"origin": c.base, "relay": True})
    await api(http, "POST", f"{a.base}/api/follows", a.token, {"target": b.base})
    await api(http, "POST", f"{d.base}/api/follows", d.token, {"target": c.base})
    await wait_for("A copies B", synced(a, b), 120, everyone)
    await wait_for("D copies C", synced(d, c), 120, everyone)


async def warm_up(nodes: dict[str, Node], http: aiohttp.ClientSession, kind: str) -> None:
    """A few writes before the clock starts (and the initiative the needs belong to): A learns
    C through B's relay and copies it once (its bootstrap of C), so that the measured writes
    travel by the live path only."""
    a, c, d = nodes["A"], nodes["C"], nodes["D"]
    writer = Writer(c, http, "initiatives")
    await writer.one(OWNER, 0)
    writer.kind = kind
    for i in range(WARMUP):
        await writer.one(f"warmup_{i}", i)
    failed = [w for w in writer.writes if w.status != 201]
    if failed:
        raise RuntimeError(f"writes at C refused: {failed[0].status} {failed[0].error}")
    iris = [w.iri for w in writer.writes]
    everyone = list(nodes.values())
    await wait_for("the warm-up writes reach D", holds(d, iris), 120, everyone)
    await wait_for("the warm-up writes reach A through B", holds(a, iris), 180, everyone)
    await wait_for("A copies C (learned through B)", synced(a, c), 180, everyone)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def delays(writes: list[Write], at_c: dict[str, float], seen: dict[str, float], end: float) -> dict[str, Any]:
    """Delays from the commit at C (and from the POST) to the commit at the follower."""
    ok = [w for w in writes if w.status == 201 and w.iri in at_c]
    arrived = [w for w in ok if w.iri in seen]
    if not arrived:
        return {"seen": 0, "written": len(ok)}
    values = [seen[w.iri] - at_c[w.iri] for w in arrived]
    from_post = [seen[w.iri] - w.sent for w in arrived]
    head = [seen[w.iri] - at_c[w.iri] for w in arrived if w.sent - writes[0].sent < 2.0]
    tail = [seen[w.iri] - at_c[w.iri] for w in arrived if writes[-1].sent - w.sent < 2.0]
    first, last = min(seen[w.iri] for w in arrived), max(seen[w.iri] for w in arrived)
    return {
        "written": len(ok), "seen": len(arrived), "missing": len(ok) - len(arrived),
        "p50_ms": ms(percentile(values, 50)), "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)), "max_ms": ms(max(values)), "min_ms": ms(min(values)),
        "from_post_p50_ms": ms(percentile(from_post, 50)), "from_post_p99_ms": ms(percentile(from_post, 99)),
        "p50_first_2s_ms": ms(percentile(head, 50)) if head else None,
        "p50_last_2s_ms": ms(percentile(tail, 50)) if tail else None,
        "arrived_per_s": round(len(arrived) / max(1e-9, last - first), 1) if len(arrived) > 1 else None,
        "last_arrival_after_last_write_s": round(last - end, 2),
    }  # fmt: skip


def work_rows(node: Node) -> dict[str, Any]:
    """Deliveries and inbox items by state (and HTTP status), with a few errors: where a write waited."""
    with contextlib.closing(read_only(node.database)) as conn:
        deliveries = {f"{state}/{status}": count for state, status, count in conn.execute(
            "SELECT state, last_status, count(*) FROM deliveries GROUP BY state, last_status")}  # fmt: skip
        retried = int(scalar(conn, "SELECT count(*) FROM deliveries WHERE attempts > 1") or 0)
        inbox = dict(conn.execute("SELECT state, count(*) FROM inbox_items GROUP BY state").fetchall())
        errors = [e[:300] for (e,) in conn.execute(
            "SELECT DISTINCT last_error FROM deliveries WHERE last_error IS NOT NULL LIMIT 3")]  # fmt: skip
        errors += [e[:300] for (e,) in conn.execute(
            "SELECT DISTINCT last_error FROM inbox_items WHERE last_error IS NOT NULL LIMIT 3")]  # fmt: skip
    return {"deliveries": deliveries, "deliveries_retried": retried, "inbox": inbox, "errors": errors}


async def measure(nodes: dict[str, Node], kind: str, rate: float, seconds: float, in_flight: int,
                  drain: float) -> dict[str, Any]:  # fmt: skip
    connector = aiohttp.TCPConnector(limit=max(100, in_flight * 2))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300), connector=connector) as http:
        await connect(nodes, http)
        await warm_up(nodes, http, kind)
        watcher = Watcher({"C": nodes["C"], "A": nodes["A"], "D": nodes["D"]})
        watcher.start()
        writer = Writer(nodes["C"], http, kind)
        try:
            print(f"  writing {kind} at C: {rate:g}/s asked for {seconds:g} s, at most {in_flight} "
                  "waiting for C...", flush=True)  # fmt: skip
            took = await writer.steady(f"w{int(time.time())}", rate, seconds, in_flight)
            ended = time.monotonic()
            wanted = {w.iri for w in writer.writes if w.status == 201}
            deadline = ended + drain
            while time.monotonic() < deadline and not all(wanted <= set(s) for s in watcher.seen.values()):
                if watcher.error is not None:
                    raise watcher.error
                await asyncio.sleep(0.2)
        finally:
            watcher.stopping.set()
            watcher.join(10)
    writes = writer.writes
    acked = [w.acked - w.sent for w in writes if w.status == 201]
    late = [w.sent - w.due for w in writes]
    failed = [w for w in writes if w.status != 201]
    at_c = watcher.seen["C"]
    return {
        "kind": kind, "rate_asked": rate, "seconds_asked": seconds, "in_flight": in_flight,
        "writes": len(writes), "writes_failed": len(failed),
        "write_errors": sorted({f"{w.status} {w.error[:200]}" for w in failed})[:5],
        "write_rate_achieved": round(len(writes) / took, 1), "write_seconds": round(took, 2),
        "started_late_p50_ms": ms(percentile(late, 50)) if late else None,
        "post_p50_ms": ms(percentile(acked, 50)) if acked else None,
        "post_p99_ms": ms(percentile(acked, 99)) if acked else None,
        "relayed_C_B_A": delays(writes, at_c, watcher.seen["A"], ended),
        "direct_C_D": delays(writes, at_c, watcher.seen["D"], ended),
        "work": {name: work_rows(node) for name, node in nodes.items()},
        "rss_mb": {name: mb(node.hwm_kb() + node.children_hwm_kb()) for name, node in nodes.items()},
        "log_problems": {name: node.problems() for name, node in nodes.items()},
    }  # fmt: skip


def run(kind: str, rate: float, seconds: float, in_flight: int, drain: float, inbox_rate: int,
        keep: bool) -> dict[str, Any]:  # fmt: skip
    code = code_version()  # at the start: the tree may change while a run goes on
    work = Path(tempfile.mkdtemp(prefix="oscartes-propagation-"))
    env = {"OSCARTES_INBOX_RATE_PER_MINUTE": str(inbox_rate)} if inbox_rate else {}
    try:
        bases = {name: f"http://{HOSTS[name]}:{free_port(HOSTS[name])}" for name in ("C", "B", "A")}
        port = free_port(HOSTS["D"])
        while bases["A"].endswith(f":{port}"):
            port = free_port(HOSTS["D"])
        bases["D"] = f"http://{HOSTS['D']}:{port}"
        tokens = {name: init_node(work / name, base) for name, base in bases.items()}
        with contextlib.ExitStack() as stack:
            nodes = {name: stack.enter_context(serving(f"propagation-{name}", work / name, base, tokens[name], env))
                     for name, base in bases.items()}  # fmt: skip
            result = asyncio.run(measure(nodes, kind, rate, seconds, in_flight, drain))
    finally:
        if keep:
            print(f"  kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return {"code_at_start": code, "inbox_rate_per_minute": inbox_rate or "default (1200)", **result}


def report(r: dict[str, Any]) -> None:
    print(f"\nLive propagation: {r['writes']} {r['kind']} written at C, asked at {r['rate_asked']:g}/s, "
          f"done at {r['write_rate_achieved']:g}/s ({r['writes_failed']} failed); "
          f"POST p50 {r['post_p50_ms']} ms, p99 {r['post_p99_ms']} ms")  # fmt: skip
    for label, key in (("C -> B -> A (relayed)", "relayed_C_B_A"), ("C -> D (direct, baseline)", "direct_C_D")):
        d = r[key]
        if not d.get("seen"):
            print(f"  {label}: nothing arrived of {d.get('written')}")
            continue
        print(f"  {label}: {d['seen']}/{d['written']} arrived; delay from the commit at C:")
        print(row("    p50", d["p50_ms"], "ms"))
        print(row("    p99", d["p99_ms"], "ms"))
        print(row("    max", d["max_ms"], "ms"))
        print(row("    p50 of the first 2 s of writes", d["p50_first_2s_ms"] or 0.0, "ms"))
        print(row("    p50 of the last 2 s of writes", d["p50_last_2s_ms"] or 0.0, "ms"))
        print(row("    p50 from the POST sent", d["from_post_p50_ms"], "ms"))
        print(row("    arrived/s", d["arrived_per_s"] or 0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=sorted(DOCS), default="needs", help="what is written at C")
    parser.add_argument("--rate", type=float, default=100.0, help="writes per second asked of C")
    parser.add_argument("--seconds", type=float, default=25.0, help="how long C is written to")
    parser.add_argument("--in-flight", type=int, default=32, help="writes waiting for C's answer at most")
    parser.add_argument("--drain", type=float, default=600.0, help="seconds to wait for the last writes")
    parser.add_argument("--inbox-rate", type=int, default=0,
                        help="OSCARTES_INBOX_RATE_PER_MINUTE of every node (0: the node's default)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the nodes' folders (under /tmp)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args(argv)
    result = run(args.kind, args.rate, args.seconds, args.in_flight, args.drain, args.inbox_rate, args.keep)
    report(result)
    print(json.dumps({"benchmark": "propagation", "machine": machine(), **result}, indent=2))
    write_json(args.json, "propagation", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
