"""A relay (or any server that is not a directory node) following the node actor only gets
what such servers show: Announces of new events, needs and offers, never whole records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeFediverse
from tests.integration.conftest import RunningNode, start_node, stop_node


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, FakeFediverse]]:
    node = await start_node(tmp_path / "n", "", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    fake = await FakeFediverse("127.0.0.4").start()
    yield node, fake
    await fake.stop()
    await stop_node(node)


async def test_a_relay_gets_announces_of_what_it_can_show(served: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = served
    relay = fake.actor("relay", type="Application")
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{fake.base}/follows/1", "type": "Follow",
              "actor": relay.iri, "object": f"{node.base}/actor"}  # fmt: skip
    status, _ = await fake.post(f"{node.base}/actor/inbox", follow, relay)
    assert status == 202
    await eventually(lambda: _arrived(fake, "Accept"), 10, what="the relay is accepted")
    await node.create("initiatives", samples.initiative())
    event = await node.create("events", samples.event())
    announces = await eventually(lambda: _arrived(fake, "Announce"), 10, what="an Announce of the event")
    assert [a["object"] for a in announces] == [event["id"]]
    assert announces[0]["actor"] == f"{node.base}/actor"
    assert not fake.received("Create") and not fake.received("Update")


async def _arrived(fake: FakeFediverse, kind: str) -> list[dict[str, object]]:
    return fake.received(kind)
