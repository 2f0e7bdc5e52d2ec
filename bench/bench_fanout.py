"""Fan-out: one Create to 10,000 followers spread over 1,000 shared inboxes served on loopback.

Measures the seconds until every inbox has its copy, through the real delivery worker (durable
rows, leases, signatures, the guarded client), against the floor: computing the same number
of RSA signatures in the same run. Target: at most 4x that floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, insert, select

from bench.common import machine, write_json
from federation import signatures as sig
from federation.fetch import FetchPolicy, GuardedClient
from node import actors, federate
from node.cli import _init
from node.config import load_config
from node.convert.common import now_utc
from node.storage.db import make_engine
from node.storage.tables import deliveries, follows, remote_actors
from node.workers.delivery import Deliverer


class Inboxes:
    """The receiving hosts, in their own process so that they do not share the sender's CPU."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.ports: list[int] = []
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.inboxes_server", "--count", str(self.count), stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 120)
        self.ports = json.loads(line)

    async def received(self) -> int:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{self.ports[0]}/count") as r:
            return int((await r.json())["received"])

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            await self.process.wait()


async def run(followers: int, hosts: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="oscartes-fanout-"))
    config = load_config(data, base_url="http://127.0.0.1:9", env={"OSCARTES_ALLOW_PRIVATE_ADDRESSES": "1"})
    await _init(config)
    engine = make_engine(config.effective_database_url)
    receivers = Inboxes(hosts)
    await receivers.start()
    actor = f"{config.base_url}/initiatives/bench"
    now = now_utc()
    async with engine.begin() as conn:
        await actors.ensure(conn, config, actor, "bench", "initiative")
        remote_rows, follow_rows = [], []
        for n in range(followers):
            port = receivers.ports[n % hosts]
            iri = f"http://127.0.0.1:{port}/users/u{n}"
            remote_rows.append({"iri": iri, "host": f"127.0.0.1:{port}", "username": f"u{n}", "inbox": f"{iri}/inbox",
                                "shared_inbox": f"http://127.0.0.1:{port}/inbox", "key_id": f"{iri}#main-key",
                                "public_pem": None, "doc": "{}", "fetched_at": now})  # fmt: skip
            follow_rows.append({"follower": iri, "target": actor, "activity_id": f"{iri}/follow", "state": "accepted",
                                "created_at": now, "updated_at": now})  # fmt: skip
        await conn.execute(insert(remote_actors), remote_rows)
        await conn.execute(insert(follows), follow_rows)
    note = {"id": f"{config.base_url}/needs/bench", "type": ["Note", "Proposal"], "content": "<p>Bénévoles</p>",
            "attributedTo": actor}  # fmt: skip
    client = GuardedClient(FetchPolicy.allowing_private())
    await client.start()
    deliverer = Deliverer(config, engine, client)  # the production settings
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            queued = await federate.publish(conn, config, actor, "Create", note, now_utc())
        delivered = 0
        while delivered < queued:
            delivered += await deliverer.run_once()
            if delivered < queued:
                await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        received = await receivers.received()
        async with engine.connect() as conn:
            counted = await conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state))
            states: dict[str, int] = {row[0]: row[1] for row in counted}
    finally:
        await client.close()
        await receivers.stop()
        await engine.dispose()
    # The floor: the same number of RSA signatures over the same body, nothing else.
    async with make_engine(config.effective_database_url).connect() as conn:
        local = await actors.get(conn, actor)
    assert local is not None
    key = actors.private_key(config, local)
    body = json.dumps(note).encode()
    t = time.perf_counter()
    for port in receivers.ports:
        sig.sign_request("POST", f"http://127.0.0.1:{port}/inbox", {"Content-Type": "application/activity+json"},
                         body, local.key_id, key)  # fmt: skip
    floor = time.perf_counter() - t
    return {"benchmark": "fanout", "machine": machine(), "followers": followers, "shared_inboxes": hosts,
            "deliveries": queued, "delivery_states": states, "received": received,
            "delivery_s": round(seconds, 3), "signatures_floor_s": round(floor, 3),
            "ratio_to_floor": round(seconds / floor, 2), "target_ratio": 4.0,
            "target_met": seconds <= 4 * floor}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs; the median one is reported")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args(argv)
    runs = sorted((asyncio.run(run(args.followers, args.hosts)) for _ in range(args.rounds)),
                  key=lambda r: float(r["ratio_to_floor"]))  # fmt: skip
    result = {**runs[len(runs) // 2], "ratios_all_rounds": [r["ratio_to_floor"] for r in runs]}
    print(json.dumps(result, indent=2))
    write_json(args.json, "fanout", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
