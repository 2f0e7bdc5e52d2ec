"""A strict peer: Fedify 2.x (npm) on loopback follows an initiative, receives its events and
needs, their updates and deletions; the initiative follows the Fedify actor and gets its post.
Fedify signs with RFC 9421 first and checks everything; its errors must stay empty."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.storage.db import make_engine
from node.storage.tables import follows, inbox_items
from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.peers.fedify_peer import FedifyPeer, PeerFactory, fedify_peer_factory

__all__ = ["fedify_peer_factory"]  # the fixture, for pytest


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    await running.create("initiatives", samples.initiative())
    yield running
    await stop_node(running)


def _object_id(activity: dict[str, Any]) -> str:
    obj = activity.get("object")
    return obj if isinstance(obj, str) else (obj or {}).get("id", "")


async def _rows(node: RunningNode, table: Any) -> list[Any]:
    engine = make_engine(node.config.effective_database_url)
    async with engine.connect() as conn:
        found = (await conn.execute(select(table))).all()
    await engine.dispose()
    return list(found)


async def test_fedify_follows_and_is_followed(node: RunningNode, fedify_peer_factory: PeerFactory) -> None:
    peer: FedifyPeer = await fedify_peer_factory(host="127.0.0.3")
    actor = f"{node.base}/initiatives/repair_cafe_massy"

    looked_up = await peer.lookup(actor)
    assert looked_up["id"] == actor, looked_up

    await peer.follow(actor)
    await peer.wait_for(lambda a: a.get("type") == "Accept")

    async def followed() -> bool:
        return any(r.target == actor and r.state == "accepted" for r in await _rows(node, follows))

    await eventually(followed, what="the Fedify actor among our followers")

    event = await node.create("events", samples.event())
    created = await peer.wait_for(lambda a: a.get("type") == "Create" and _object_id(a) == event["id"])
    need = await node.create("needs", samples.proposal())
    await peer.wait_for(lambda a: a.get("type") == "Create" and _object_id(a) == need["id"])
    changed = samples.event(name="Repair Café de décembre (complet)")
    async with node.http.put(f"{node.base}/api/events/repair_cafe_decembre", json=changed, headers=node.auth) as r:
        assert r.status == 200
    await peer.wait_for(lambda a: a.get("type") == "Update" and _object_id(a) == event["id"])
    async with node.http.delete(f"{node.base}/api/events/repair_cafe_decembre", headers=node.auth) as r:
        assert r.status == 200
    await peer.wait_for(lambda a: a.get("type") == "Delete" and _object_id(a) == event["id"])
    assert created["actor"] == actor

    async with node.http.post(f"{node.base}/api/initiatives/repair_cafe_massy/follow",
                              json={"target": peer.actor_id}, headers=node.auth) as r:  # fmt: skip
        assert r.status == 202, await r.text()

    async def following() -> bool:
        return any(r.follower == actor and r.target == peer.actor_id and r.state == "accepted"
                   for r in await _rows(node, follows))  # fmt: skip

    await eventually(following, what="Fedify accepts our initiative's Follow")
    note = await peer.post("Bonjour de Fedify !")

    async def got_post() -> bool:
        return any(r.activity_type == "Create" and note in r.body for r in await _rows(node, inbox_items))

    await eventually(got_post, what="the Fedify post in our inbox")
    assert await peer.errors() == [], "Fedify refused nothing we sent"
