"""The host's lists under /api/: admin tokens only, and paged by `limit` and a cursor that the
`Link: rel="next"` header carries, each page in the list's own JSON shape."""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from node import actors, cli_nodes, federate, origins
from node.convert.common import now_utc
from node.storage.db import make_engine
from node.storage.tables import ingest_reports
from node.storage.tables import origins as origins_table
from tests import samples
from tests.integration.conftest import RunningNode

LISTS = ["/api/follows", "/api/origins", "/api/followers", "/api/ingest-reports", "/api/domain-blocks"]
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


async def _get(node: RunningNode, url: str, token: str | None = "admin") -> tuple[int, Any, str | None]:
    headers = {} if token is None else {"Authorization": f"Bearer {node.admin if token == 'admin' else token}"}
    async with node.http.get(url if url.startswith("http") else node.base + url, headers=headers) as r:
        return r.status, await r.json(content_type=None), r.headers.get("Link")


async def _pages(node: RunningNode, path: str) -> list[Any]:
    """Every page of a list, following Link: rel="next" to the end."""
    pages, url = [], f"{node.base}{path}"
    for _ in range(20):
        status, body, link = await _get(node, url)
        assert status == 200, body
        pages.append(body)
        if link is None:
            return pages
        found = NEXT.match(link)
        assert found and found[1].startswith(f"{node.base}{path.split('?')[0]}?"), link
        url = found[1]
    raise AssertionError(f"{path}: more pages than items")


async def _register(node: RunningNode, n: int, **values: Any) -> str:
    """An origin row as following a node writes it (its actor on a loopback address, which this
    node refuses to fetch: nothing leaves the machine)."""
    base = f"http://127.0.0.{10 + n}:9"
    found = origins.Discovered(f"{base}/actor", f"{base}/dataset", base, f"{base}/dataset/changes",
                               "https://creativecommons.org/licenses/by/4.0/", f"Nœud {n}")  # fmt: skip
    engine = make_engine(node.config.effective_database_url)
    async with engine.begin() as conn:
        await origins.register(conn, found, now_utc(), followed=True)
        if values:
            await conn.execute(update(origins_table).where(origins_table.c.graph == found.graph).values(**values))
    await engine.dispose()
    return found.graph


@pytest.mark.parametrize("path", LISTS)
async def test_each_list_is_for_admin_tokens(node: RunningNode, path: str) -> None:
    status, body, _ = await _get(node, path, token=None)
    assert status == 401 and body["status"] == 401, body
    status, body, _ = await _get(node, path, token="osc_not-a-token")
    assert status == 401, body
    editor = await node.token("editor", [])
    status, body, _ = await _get(node, path, token=editor)
    assert status == 403 and "admin" in body["detail"], body
    status, body, link = await _get(node, path)
    assert status == 200 and link is None, body


async def test_an_initiatives_followers_are_for_its_editors(node: RunningNode) -> None:
    iri = (await node.create("initiatives", samples.initiative()))["id"]
    path = f"/api/initiatives/{iri.rsplit('/', 1)[-1]}/followers"
    status, body, _ = await _get(node, path, token=None)
    assert status == 401, body
    assert (await _get(node, path, token=await node.token("editor", [])))[0] == 403
    status, body, _ = await _get(node, path, token=await node.token("editor", [iri]))
    assert status == 200 and body == {"accepted": [], "pending": []}, body


async def test_origins_lists_what_oscartes_origins_lists(node: RunningNode) -> None:
    relayed = await _register(node, 1)
    engine = make_engine(node.config.effective_database_url)
    await origins.set_policy(node.config, engine, relayed, "limited", True)
    await engine.dispose()
    frozen = await _register(node, 2, followed=False, sync_state="frozen")  # what unfollowing leaves
    followed = await _register(node, 3)
    status, listed, _ = await _get(node, "/api/origins")
    assert status == 200
    shell = await cli_nodes.run(node.config, argparse.Namespace(command="origins", url=None, policy=None, relay=None))
    assert listed == json.loads(shell)
    assert [(o["graph"], o["policy"], o["relay"], o["followed"]) for o in listed] == [
        (relayed, "limited", True, True), (frozen, "trusted", False, False), (followed, "trusted", False, True),
    ]  # fmt: skip
    assert all(o["records"] == 0 and o["sync"] in ("bootstrap", "frozen") for o in listed)
    status, follows, _ = await _get(node, "/api/follows")
    assert [o["graph"] for o in follows] == [relayed, followed], "a frozen copy is not followed"


async def test_every_list_pages_to_its_end(node: RunningNode) -> None:
    for n in range(5):
        await _register(node, n)
        async with node.http.post(f"{node.base}/api/domain-blocks", json={"domain": f"spam{n}.example"},
                                  headers=node.auth) as r:  # fmt: skip
            assert r.status == 201
    engine = make_engine(node.config.effective_database_url)
    now = now_utc()
    async with engine.begin() as conn:
        await conn.execute(insert(ingest_reports), [
            {"origin": f"http://127.0.0.1{n % 2}:9/dataset", "iri": f"http://127.0.0.1{n % 2}:9/events/{n}",
             "reason": "no end", "received_at": now + timedelta(seconds=n)} for n in range(5)])  # fmt: skip
        for n in range(5):
            follower = f"http://127.0.0.{20 + n}:9/actor"
            await federate.set_follow(conn, follower, actors.node_actor_iri(node.config), f"{follower}#follow",
                                      "pending" if n % 2 else "accepted", now)  # fmt: skip
    await engine.dispose()
    for path in LISTS:
        _, whole, _ = await _get(node, path)
        pages = await _pages(node, f"{path}?limit=2")
        assert len(pages) == 3, (path, pages)
        if isinstance(whole, dict):  # followers: each page split by state
            assert {s: sum((p[s] for p in pages), []) for s in whole} == whole
        else:
            assert sum(pages, []) == whole and len(whole) == 5, path
    reports = await _pages(node, "/api/ingest-reports?origin=http://127.0.0.11:9/dataset&limit=1")
    assert [r[0]["iri"] for r in reports] == ["http://127.0.0.11:9/events/3", "http://127.0.0.11:9/events/1"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=two", "cursor=%%%", "cursor=WyJ4Il0", "origin=x"])
async def test_a_bad_paging_parameter_is_named(node: RunningNode, query: str) -> None:
    """`WyJ4Il0` is a cursor of a list keyed by text, not of the reports (keyed by number);
    `origin` filters the reports only."""
    name = query.split("=")[0]
    path = "/api/followers" if name == "origin" else "/api/ingest-reports"
    status, body, _ = await _get(node, f"{path}?{query}")
    assert status == 400 and body["detail"].startswith(f"{name}:"), body
