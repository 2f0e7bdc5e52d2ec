"""A strict peer, Fedify 2.x on loopback, follows a theme's Group actor and receives its Announce
of a new event written through the API. Fedify verifies every signature; its errors stay empty.
Once the host turns groups off, the follower can still leave: its Undo is taken, the group is Gone.

Needs `Directory` to call `groups.announce_to_groups` after a write (node/service.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from node.keys import ENGINE
from node.storage.tables import follows
from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node
from tests.peers.fedify_peer import PeerFactory, fedify_peer_factory

__all__ = ["fedify_peer_factory"]  # the fixture, for pytest


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1",
                               OSCARTES_GROUP_ACTORS="1")  # fmt: skip
    await running.create("initiatives", samples.initiative())  # about repair: the repair group exists
    yield running
    await stop_node(running)


async def test_fedify_follows_a_theme_and_gets_its_announce(node: RunningNode,
                                                           fedify_peer_factory: PeerFactory) -> None:
    peer = await fedify_peer_factory(host="127.0.0.3")
    group = f"{node.base}/groups/repair"

    looked_up = await peer.lookup(group)
    assert looked_up["found"] and looked_up["id"] == group and looked_up["type"] == "Group", looked_up
    assert looked_up["preferred_username"] == "reparation"

    await peer.follow(group)
    await peer.wait_for(lambda a: a.get("type") == "Accept" and a.get("actor") == group)

    event = await node.create("events", samples.event())  # about repair: the group announces it
    announce = await peer.wait_for(lambda a: a.get("type") == "Announce" and a.get("object_id") == event["id"])
    assert announce["actor"] == group
    assert await peer.errors() == [], "Fedify refused nothing we sent"


async def _followers_of(node: RunningNode, group: str) -> list[str]:
    async with node.server.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(follows.c.follower).where(follows.c.target == group))).all()
    return [r.follower for r in rows]


async def test_a_fedify_follower_leaves_a_group_the_host_turned_off(tmp_path: Path,
                                                                   fedify_peer_factory: PeerFactory) -> None:
    peer = await fedify_peer_factory(host="127.0.0.3")
    on = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1",
                          OSCARTES_GROUP_ACTORS="1")  # fmt: skip
    port, group = on.server.port, f"{on.base}/groups/repair"
    try:
        await on.create("initiatives", samples.initiative())
        await peer.follow(group)
        await peer.wait_for(lambda a: a.get("type") == "Accept" and a.get("actor") == group)
        assert await _followers_of(on, group) == [peer.actor_id]
    finally:
        await stop_node(on)

    off = await start_node(tmp_path / "n", "", host="127.0.0.2", port=port, OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    try:
        before = len(await peer.outgoing())
        await peer.unfollow(group, immediate=True)  # delivered at once: an error answer fails the call
        sent = (await peer.outgoing())[before:]
        posts = [o for o in sent if o.get("method") == "POST" and o.get("url") == f"{group}/inbox"]
        assert [p.get("status") for p in posts] == [202], sent
        await eventually(lambda: _none_left(off, group), what="the follow row removed")
        async with off.http.get(group, headers={"Accept": AS2}) as response:
            assert response.status == 410
            assert (await response.json(content_type=None))["type"] == "Tombstone"
        assert await peer.errors() == [], "Fedify refused nothing we sent"
    finally:
        await stop_node(off)


async def _none_left(node: RunningNode, group: str) -> bool:
    return await _followers_of(node, group) == []
