"""Each node decides whom it lets copy it (open, approval, allowlist) and what it keeps of
each origin (trusted, limited, blocked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from node.keys import DELIVERER, INBOX_WORKER, SYNCER
from node.storage.tables import deliveries, follows, inbox_items, origins
from tests import samples
from tests.conftest import free_port
from tests.eventually import eventually
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_region import ENV, api, held, seed, sql


async def two(tmp_path: Path, **b_env: str) -> tuple[RunningNode, RunningNode]:
    try:
        a = await start_node(tmp_path / "a", "", host="127.0.0.2", **ENV)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    b = await start_node(tmp_path / "b", "", host="127.0.0.3", **ENV, **b_env)
    return a, b


async def test_approval(tmp_path: Path) -> None:
    a, b = await two(tmp_path, OSCARTES_FOLLOW_POLICY="approval")
    try:
        await seed(b, "atelier_b", "Atelier B")
        await api(a, "POST", "/api/follows", {"target": b.base})
        pending = await eventually(lambda: _pending(b), 10, what="A's follow waits for B's host")
        assert pending == [f"{a.base}/actor"]
        assert await held(a, b) == {}
        await api(b, "POST", "/api/followers", {"actor": f"{a.base}/actor", "decision": "accept"})
        await eventually(lambda: _has(a, b, 2), 20, what="A copies B once approved")
    finally:
        await stop_node(a)
        await stop_node(b)


async def test_allowlist(tmp_path: Path) -> None:
    allowed_port = free_port("127.0.0.2")
    try:
        a = await start_node(tmp_path / "a", "", host="127.0.0.2", port=allowed_port, **ENV)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    stranger = await start_node(tmp_path / "s", "", host="127.0.0.4", **ENV)
    b = await start_node(tmp_path / "b", "", host="127.0.0.3", OSCARTES_FOLLOW_POLICY="allowlist",
                         OSCARTES_FOLLOW_ALLOWLIST=f"127.0.0.2:{allowed_port}", **ENV)  # fmt: skip
    try:
        await seed(b, "atelier_b", "Atelier B")
        await api(a, "POST", "/api/follows", {"target": b.base})
        await api(stranger, "POST", "/api/follows", {"target": b.base})
        await eventually(lambda: _has(a, b, 2), 20, what="the allowed node copies B")
        refused = await eventually(lambda: _state(stranger, b, "rejected"), 20, what="the stranger is refused")
        assert refused and await held(stranger, b) == {}
    finally:
        for running in (a, stranger, b):
            await stop_node(running)


async def test_blocking_an_origin_purges_it_and_unblocking_copies_it_again(tmp_path: Path) -> None:
    a, b = await two(tmp_path)
    try:
        await seed(b, "atelier_b", "Atelier B")
        await api(a, "POST", "/api/follows", {"target": b.base})
        await eventually(lambda: _has(a, b, 2), 20, what="A copies B")
        blocked = await api(a, "PATCH", "/api/origins", {"origin": b.base, "policy": "blocked"})
        assert blocked["policy"] == "blocked" and await held(a, b) == {}
        await b.create("initiatives", samples.initiative("nouveau_b", name="Nouveau B"))
        await eventually(lambda: _handled_from(a, b), 10, what="B's Create reaches A's inbox")
        assert await held(a, b) == {}, "a blocked origin's news is ignored"
        listing = await api(a, "GET", "/api/follows")
        assert listing[0]["policy"] == "blocked" and listing[0]["records"] == 0
        await api(a, "PATCH", "/api/origins", {"origin": b.base, "policy": "trusted"})
        await eventually(lambda: _has(a, b, 3), 20, what="A copies B again from the start")
    finally:
        await stop_node(a)
        await stop_node(b)


async def _pending(node: RunningNode) -> list[str]:
    followers = await api(node, "GET", "/api/followers")
    return list(followers["pending"])


async def _has(node: RunningNode, origin: RunningNode, n: int) -> bool:
    return len(await held(node, origin)) >= n


async def _state(node: RunningNode, origin: RunningNode, state: str) -> bool:
    rows = await sql(node, select(follows.c.state).where(follows.c.target == f"{origin.base}/actor"))
    return bool(rows) and rows[0].state == state


async def _handled_from(node: RunningNode, origin: RunningNode) -> bool:
    rows = await sql(node, select(inbox_items.c.state).where(inbox_items.c.actor == f"{origin.base}/actor",
                                                             inbox_items.c.activity_type == "Create"))  # fmt: skip
    return any(r.state in ("ignored", "done", "unchanged") for r in rows)


async def test_a_copy_of_many_pages_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Pages of 2 records: read in the reader process; the copy is cut after 2 pages (one
    sync pass), and the next pass goes on from the stored cursor, not from the start. A's
    workers run when the test says (a cut pass is due again at once: the stop between the
    passes would otherwise last a moment)."""
    try:
        a = await start_node(tmp_path / "a", "", host="127.0.0.2", OSCARTES_CHANGES_PAGE_SIZE="2",
                             OSCARTES_SEPARATE_WORKERS="1", **ENV)  # fmt: skip
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    b = await start_node(tmp_path / "b", "", host="127.0.0.3", **ENV)
    try:
        for n in range(7):
            await b.create("initiatives", samples.initiative(f"ini_{n}", name=f"Initiative {n}"))
        app = a.server.app
        syncer = app[SYNCER]
        syncer.max_pages = 2
        await api(a, "POST", "/api/follows", {"target": b.base})
        assert await app[DELIVERER].run_once() == 1, "the Follow leaves"
        await eventually(lambda: _accepted(a, b), 20, what="B's Accept reaches A and is handled")
        await syncer.run_once()
        assert len(await held(a, b)) == 4, "the first pass copies two pages"
        cursors = await sql(a, select(origins.c.cursor))
        assert cursors and cursors[0].cursor and "after=" in cursors[0].cursor, "the position is durable"
        assert not await _live(a)
        await syncer.run_once()
        assert len(await held(a, b)) == 7, "the next pass goes on from the cursor"
        assert await _live(a), "the copy turns live"
    finally:
        await stop_node(a)
        await stop_node(b)


async def _accepted(node: RunningNode, origin: RunningNode) -> bool:
    await node.server.app[INBOX_WORKER].run_once()
    return await _state(node, origin, "accepted")


async def _live(node: RunningNode) -> bool:
    listing = await api(node, "GET", "/api/follows")
    return bool(listing) and listing[0]["sync"] == "live"


async def test_a_followed_node_is_not_rate_limited(tmp_path: Path) -> None:
    """The news of a node this node copies is the directory itself: no 429 for it."""
    try:
        a = await start_node(tmp_path / "a", "", host="127.0.0.2", OSCARTES_INBOX_RATE_PER_MINUTE="2", **ENV)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    b = await start_node(tmp_path / "b", "", host="127.0.0.3", **ENV)
    try:
        await api(a, "POST", "/api/follows", {"target": b.base})
        await eventually(lambda: _live(a), 20, what="A follows B")
        for n in range(6):
            await b.create("initiatives", samples.initiative(f"ini_{n}", name=f"Initiative {n}"))
        await eventually(lambda: _has(a, b, 6), 20, what="every Create reaches A")
        rows = await sql(b, select(deliveries.c.last_status))
        assert 429 not in {r.last_status for r in rows}
    finally:
        await stop_node(a)
        await stop_node(b)
