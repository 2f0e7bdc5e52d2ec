"""Groups turned off after people followed them: a group made earlier answers 410 Gone, and its
inbox still takes Undo and Delete, so that its followers can leave and their servers stop
retrying; it takes no new follower, by its inbox or the shared one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.keys import ENGINE
from node.storage.tables import follows, inbox_items
from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeActor, FakeFediverse
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node
from tests.integration.test_groups import follow_group, market
from tests.integration.test_inbox_security import follow

ON = {"OSCARTES_ALLOW_PRIVATE_ADDRESSES": "1", "OSCARTES_GROUP_ACTORS": "1"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeFediverse]:
    server = await FakeFediverse("127.0.0.4").start()
    yield server
    await server.stop()


@pytest.fixture
async def turned_off(tmp_path: Path, fake: FakeFediverse) -> AsyncIterator[tuple[RunningNode, str]]:
    """A node whose food-in-Essonne group ann and bea followed, restarted with groups off."""
    node = await start_node(tmp_path / "n", "", host="127.0.0.2", **ON)
    port = node.server.port
    await node.create("initiatives", samples.initiative())
    await node.create("events", market())
    group = f"{node.base}/groups/food-91"
    for name in ("ann", "bea"):
        await follow_group(node, fake, fake.actor(name), group)
    await stop_node(node)
    off = await start_node(tmp_path / "n", "", host="127.0.0.2", port=port, OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    assert not off.config.group_actors
    yield off, group
    await stop_node(off)


async def _status(node: RunningNode, url: str) -> tuple[int, Any]:
    async with node.http.get(url, headers={"Accept": AS2}) as r:
        return r.status, await r.json(content_type=None)


async def _follow_rows(node: RunningNode, target: str) -> list[str]:
    async with node.server.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(follows.c.follower).where(follows.c.target == target))).all()
    return sorted(r.follower for r in rows)


def undo(who: FakeActor, group: str) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{who.iri}/follows/1/undo", "type": "Undo",
            "actor": who.iri, "object": follow(who, group)}  # fmt: skip


async def test_a_group_made_earlier_is_gone_and_a_never_made_one_was_never_there(
        turned_off: tuple[RunningNode, str]) -> None:  # fmt: skip
    node, group = turned_off
    status, tombstone = await _status(node, group)
    assert status == 410
    assert tombstone == {"@context": "https://www.w3.org/ns/activitystreams", "id": group, "type": "Tombstone",
                         "formerType": "Group"}  # fmt: skip
    assert (await _status(node, f"{group}/followers"))[0] == 410
    assert (await _status(node, f"{node.base}/groups/food"))[0] == 404, "asked for by no one: never made"


async def test_its_followers_can_leave_by_undo_or_delete(turned_off: tuple[RunningNode, str],
                                                         fake: FakeFediverse) -> None:  # fmt: skip
    node, group = turned_off
    ann, bea = fake.actors["ann"], fake.actors["bea"]
    assert await _follow_rows(node, group) == sorted([ann.iri, bea.iri])

    status, text = await fake.post(f"{group}/inbox", undo(ann, group), ann)
    assert status == 202, text
    await eventually(lambda: _is(_follow_rows(node, group), [bea.iri]), what="ann's follow removed")

    delete = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{bea.iri}#delete", "type": "Delete",
              "actor": bea.iri, "object": bea.iri}  # fmt: skip
    status, text = await fake.post(f"{group}/inbox", delete, bea)
    assert status == 202, text
    await eventually(lambda: _is(_follow_rows(node, group), []), what="bea's follow removed with her account")


async def test_it_takes_no_new_follower(turned_off: tuple[RunningNode, str], fake: FakeFediverse) -> None:
    node, group = turned_off
    cid = fake.actor("cid")
    status, _ = await fake.post(f"{group}/inbox", follow(cid, group), cid)
    assert status == 410
    # The shared inbox cannot be used to get round it: the group refuses, and says so.
    status, _ = await fake.post(f"{node.base}/inbox", follow(cid, group, 2), cid)
    assert status == 202
    rejects = await eventually(lambda: _value(fake.received("Reject")), what="a Reject from the group")
    assert rejects[0]["actor"] == group and rejects[0]["object"]["id"] == f"{cid.iri}/follows/2"
    assert cid.iri not in await _follow_rows(node, group)
    async with node.server.app[ENGINE].connect() as conn:
        states = [r.state for r in (await conn.execute(select(inbox_items.c.state))).all()]
    assert "refused" in states


async def _is(rows: Any, wanted: list[str]) -> bool:
    return bool(await rows == wanted)


async def _value(value: Any) -> Any:
    return value
