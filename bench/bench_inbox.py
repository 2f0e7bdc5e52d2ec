"""Inbox benchmarks.

acceptance: signed activities/s accepted (verified + stored durably + 202) by one `oscartes
serve` process, driven by wrk on loopback with pre-signed POSTs (draft-cavage, as Mastodon
sends), against the floor: a bare aiohttp handler that parses and verifies the same POSTs.
Targets: >= 2,000/s and >= 35% of the floor.

processing: activities/s through the inbox worker (JSON-LD expansion + apply) against bare
pyld expansion of the same documents in the same process. Target: >= 50% of bare expansion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common import free_port, machine, parse_wrk, require_wrk, write_json
from federation import signatures as sig
from node.cli import _init
from node.config import load_config
from node.convert.common import now_utc
from node.storage.db import make_engine
from node.storage.tables import inbox_items, remote_actors
from vocab.jsonld import expand
from vocab.loader import make_document_loader, own_context

REMOTE = "http://127.0.0.9:8080"  # never contacted: its key is already in the node's cache
ACTOR = f"{REMOTE}/users/sender"
KEY_ID = f"{ACTOR}#main-key"
LUA = """
local reqs = {}
local i = 0
init = function(args)
  local f = io.open(args[1], "r")
  while true do
    local date = f:read("*l")
    if not date then break end
    local digest = f:read("*l")
    local signature = f:read("*l")
    local body = f:read("*l")
    reqs[#reqs + 1] = wrk.format("POST", "/inbox", {["Date"] = date, ["Digest"] = digest,
      ["Signature"] = signature, ["Content-Type"] = "application/activity+json"}, body)
  end
  f:close()
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
"""


def activity(n: int) -> dict[str, Any]:
    note = {"id": f"{ACTOR}/notes/{n}", "type": "Note", "attributedTo": ACTOR, "content": f"<p>Bonjour {n}</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "published": "2026-11-23T10:00:00Z"}  # fmt: skip
    return {"@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": f"{ACTOR}/notes/{n}/activity", "type": "Create", "actor": ACTOR, "object": note,
            "to": ["https://www.w3.org/ns/activitystreams#Public"]}  # fmt: skip


def signed_requests(key: Any, base: str, count: int, path: Path) -> None:
    url = f"{base}/inbox"
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            body = json.dumps(activity(n), separators=(",", ":")).encode()
            headers = sig.sign_request("POST", url, {"Content-Type": "application/activity+json"}, body, KEY_ID, key)
            out.write(f"{headers['Date']}\n{headers['Digest']}\n{headers['Signature']}\n{body.decode()}\n")


@contextmanager
def process(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + 60
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} did not start") from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(base: str, script: Path, requests: Path, seconds: int, connections: int) -> dict[str, Any]:
    binary = require_wrk()
    argv = [binary, "--latency", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), base, "--",
            str(requests)]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    return parse_wrk(output).__dict__


async def prepare_node(data: Path, base: str, key: Any) -> None:
    config = load_config(data, base_url=base, env={})
    await _init(config)
    engine = make_engine(config.effective_database_url)
    async with engine.begin() as conn:
        await conn.execute(insert(remote_actors).values(
            iri=ACTOR, host="127.0.0.9:8080", username="sender", inbox=f"{ACTOR}/inbox", shared_inbox=f"{REMOTE}/inbox",
            key_id=KEY_ID, public_pem=sig.public_pem(key), doc="{}", fetched_at=now_utc()))  # fmt: skip
    await engine.dispose()


def acceptance(requests_count: int, seconds: int, connections: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="oscartes-inbox-"))
    key = sig.generate_key()
    node_port, floor_port = free_port(), free_port()
    node_base, floor_base = f"http://127.0.0.1:{node_port}", f"http://127.0.0.1:{floor_port}"
    script = work / "inbox.lua"
    script.write_text(LUA, encoding="utf-8")
    (work / "key.json").write_text(json.dumps({"key_id": KEY_ID, "owner": ACTOR, "public_pem": sig.public_pem(key)}))
    floor_requests, node_requests = work / "floor.txt", work / "node.txt"
    started = time.perf_counter()
    signed_requests(key, floor_base, requests_count, floor_requests)
    signed_requests(key, node_base, requests_count, node_requests)
    signing_s = time.perf_counter() - started
    with process([sys.executable, "-m", "bench.inbox_floor", "--port", str(floor_port), "--key",
                  str(work / "key.json")], floor_port):  # fmt: skip
        wrk(floor_base, script, floor_requests, 2, connections)
        floor = wrk(floor_base, script, floor_requests, seconds, connections)
    runs: dict[str, Any] = {}
    for layout in ("one process", "serve + worker"):
        data = work / layout.replace(" ", "_").replace("+", "and")
        asyncio.run(prepare_node(data, node_base, key))
        env = {"OSCARTES_INBOX_RATE_PER_MINUTE": "1000000000"}
        if layout == "serve + worker":
            env["OSCARTES_SEPARATE_WORKERS"] = "1"
        serve = [sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port", str(node_port)]
        with process(serve, node_port, env):
            worker = None
            if layout == "serve + worker":
                worker = subprocess.Popen([sys.executable, "-m", "node.cli", "worker", "--data", str(data)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env={**os.environ, **env})  # fmt: skip
            try:
                node = wrk(node_base, script, node_requests, seconds, connections)
            finally:
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=20)
        ratio = node["requests_per_s"] / floor["requests_per_s"]
        runs[layout] = {**node, "stored_distinct": _count_rows(data / "oscartes.sqlite3"),
                        "ratio": round(ratio, 3),
                        "target_met": node["requests_per_s"] >= 2000 and ratio >= 0.35}  # fmt: skip
    return {"requests_signed": requests_count, "signing_s": round(signing_s, 1), "floor": floor, "node": runs,
            "target_rps": 2000, "target_ratio": 0.35}  # fmt: skip


def _count_rows(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM inbox_items").fetchone()[0])


async def processing(count: int) -> dict[str, Any]:
    """The worker on `count` stored Creates (handled as 'ignored' after expansion: no network)."""
    from federation.fetch import FetchPolicy, GuardedClient
    from node.remote import Remote
    from node.workers.inbox import InboxWorker

    data = Path(tempfile.mkdtemp(prefix="oscartes-inbox-proc-"))
    config = load_config(data, base_url="http://127.0.0.1:9", env={})
    await _init(config)
    engine = make_engine(config.effective_database_url)
    docs = [activity(n) for n in range(count)]
    now = now_utc()
    async with engine.begin() as conn:
        await conn.execute(insert(inbox_items), [
            {"activity_id": d["id"], "activity_type": "Create", "actor": ACTOR, "recipient": f"{config.base_url}/inbox",
             "key_id": KEY_ID, "body": json.dumps(d), "state": "pending", "attempts": 0, "next_attempt_at": now,
             "created_at": now} for d in docs])  # fmt: skip
    client = GuardedClient(FetchPolicy())
    await client.start()
    worker = InboxWorker(config, engine, client, Remote(engine, client, lambda m, u, h, b: h), lambda: None)
    started = time.perf_counter()
    processed = await worker.run_once()
    worker_s = time.perf_counter() - started
    await client.close()
    await engine.dispose()
    loader = make_document_loader({config.context_url: own_context()})
    started = time.perf_counter()
    for d in docs:
        expand(dict(d), loader=loader)
    bare_s = time.perf_counter() - started
    return {"activities": count, "processed": processed, "worker_per_s": round(count / worker_s, 1),
            "bare_pyld_per_s": round(count / bare_s, 1), "ratio": round(bare_s / worker_s, 3), "target_ratio": 0.5,
            "target_met": bare_s / worker_s >= 0.5}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=30_000, help="distinct signed POSTs to cycle through")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--process", type=int, default=2_000, help="activities through the worker")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args(argv)
    result = {"benchmark": "inbox", "machine": machine(),
              "acceptance": acceptance(args.requests, args.seconds, args.connections),
              "processing": asyncio.run(processing(args.process))}  # fmt: skip
    print(json.dumps(result, indent=2))
    write_json(args.json, "inbox", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
