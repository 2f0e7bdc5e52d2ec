"""A strict peer, Fedify 2.x on loopback, follows a theme's Group actor and receives its Announce
of a new event written through the API. Fedify verifies every signature; its errors stay empty.

Needs `Directory` to call `groups.announce_to_groups` after a write (node/service.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import samples
from tests.integration.conftest import RunningNode, start_node, stop_node
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
