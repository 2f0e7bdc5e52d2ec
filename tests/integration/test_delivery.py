"""Delivery: shared inboxes once per host, retries and their limits, paused hosts, no flood on import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from node.auth import Principal
from node.convert.common import now_utc
from node.keys import DELIVERER, DIRECTORY
from node.storage.db import make_engine
from node.storage.tables import deliveries, hosts
from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeFediverse
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_inbox_security import follow


@pytest.fixture
async def followed(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, FakeFediverse]]:
    """Our initiative with three followers on one remote host (one shared inbox)."""
    node = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    fake = await FakeFediverse("127.0.0.4").start()
    await node.create("initiatives", samples.initiative())
    target = f"{node.base}/initiatives/repair_cafe_massy"
    for name in ("ann", "ben", "cat"):
        actor = fake.actor(name)
        assert (await fake.post(f"{target}/inbox", follow(actor, target), actor))[0] == 202
    await eventually(lambda: _true(len(fake.received("Accept")) == 3), what="three Accepts")
    fake.arrivals.clear()
    yield node, fake
    await fake.stop()
    await stop_node(node)


async def _true(value: Any) -> Any:
    return value


async def delivery_rows(node: RunningNode) -> list[Any]:
    engine = make_engine(node.config.effective_database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(deliveries).order_by(deliveries.c.id))).all()
    await engine.dispose()
    return list(rows)


async def test_one_delivery_per_shared_inbox(followed: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = followed
    await node.create("events", samples.event())
    creates = await eventually(lambda: _true(fake.received("Create")), what="Create delivered")
    assert len(creates) == 1 and fake.arrivals[0].path == "/inbox"
    assert creates[0]["object"]["to"] == ["https://www.w3.org/ns/activitystreams#Public"]


async def test_retry_after_is_honoured_and_4xx_is_final(followed: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = followed
    fake.plan = [(503, {"Retry-After": "120"})]
    await node.create("events", samples.event())
    row = (await eventually(lambda: _failed_once(node), what="a 503"))[0]
    assert row.state == "pending" and row.last_status == 503
    wait = row.next_attempt_at - now_utc()
    assert timedelta(seconds=100) < wait <= timedelta(seconds=120)
    await _due_now(node)
    await node.server.app[DELIVERER].run_once()
    assert (await delivery_rows(node))[-1].state == "done"

    fake.plan = [(404, {})]
    await node.create("needs", samples.proposal())
    final = await eventually(lambda: _with_state(node, "failed"), what="a final failure")
    assert final[0].last_status == 404 and final[0].attempts == 1


async def test_a_failing_host_is_paused_without_blocking(followed: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = followed
    fake.plan = [(500, {})] * 5
    await node.create("events", samples.event())
    for _ in range(5):
        await _due_now(node)
        await node.server.app[DELIVERER].run_once()
    engine = make_engine(node.config.effective_database_url)
    async with engine.connect() as conn:
        host = (await conn.execute(select(hosts).where(hosts.c.host == f"127.0.0.4:{fake.port}"))).one()
    await engine.dispose()
    assert host.failures == 5 and host.unavailable_until is not None and host.unavailable_until > now_utc()
    await _due_now(node)
    assert await node.server.app[DELIVERER].run_once() == 0, "a paused host gets nothing"


async def test_imports_do_not_flood_followers(followed: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = followed
    directory = node.server.app[DIRECTORY]
    before = len(await delivery_rows(node))
    admin = Principal(0, "admin", frozenset())
    doc = {"@context": ["https://www.w3.org/ns/activitystreams", node.config.context_url], **samples.event()}
    await directory.create("event", doc, admin, fanout=False)
    await node.server.app[DELIVERER].run_once()
    assert fake.received("Create") == [] and len(await delivery_rows(node)) == before
    async with node.http.get(f"{node.base}/initiatives/repair_cafe_massy/outbox?page=true") as r:
        outbox = await r.json(content_type=None)
    assert [a["type"] for a in outbox["orderedItems"]] == ["Create"], "it is in the outbox all the same"
    async with node.http.get(f"{node.base}/initiatives/repair_cafe_massy/featured") as r:
        assert (await r.json(content_type=None))["orderedItems"] == [f"{node.base}/events/repair_cafe_decembre"]


async def _failed_once(node: RunningNode) -> list[Any]:
    return [r for r in await delivery_rows(node) if r.last_status is not None and r.last_status >= 300]


async def _with_state(node: RunningNode, state: str) -> list[Any]:
    return [r for r in await delivery_rows(node) if r.state == state]


async def _due_now(node: RunningNode) -> None:
    engine = make_engine(node.config.effective_database_url)
    async with engine.begin() as conn:
        await conn.execute(update(deliveries).where(deliveries.c.state == "pending").values(next_attempt_at=now_utc()))
    await engine.dispose()
