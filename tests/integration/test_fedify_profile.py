"""An initiative's profile fields (address, website, phone, legal form, SIREN) survive both
kinds of reader: a strict client that takes `type` as a string, and Fedify 2.x (npm, on
loopback), which expands the JSON-LD and keeps a `PropertyValue` only under Mastodon's
schema.org IRIs (`http://schema.org#PropertyValue`, `http://schema.org#value`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import samples
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node
from tests.peers.fedify_peer import PeerFactory, fedify_peer_factory

__all__ = ["fedify_peer_factory"]  # the fixture, for pytest

STRICT_ACTOR_TYPES = ("Person", "Organization", "Group", "Application", "Service")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    await running.create("initiatives", samples.initiative(**{"pair:phone": "+33 1 23 45 67 89"}))
    yield running
    await stop_node(running)


async def test_strict_client_and_fedify_keep_the_profile_fields(node: RunningNode,
                                                                fedify_peer_factory: PeerFactory) -> None:  # fmt: skip
    peer = await fedify_peer_factory(host="127.0.0.3")
    iri = f"{node.base}/initiatives/repair_cafe_massy"

    async with node.http.get(iri, headers={"Accept": AS2}) as response:
        assert response.headers["Content-Type"].startswith(AS2)
        actor = json.loads(await response.read())
    assert isinstance(actor["type"], str) and actor["type"] in STRICT_ACTOR_TYPES, actor["type"]
    fields = {f["name"]: f["value"] for f in actor["attachment"] if f["type"] == "PropertyValue"}
    assert {"Adresse", "Site web", "Téléphone", "Forme juridique", "SIREN"} <= set(fields), fields

    looked_up = await peer.lookup(iri)
    assert looked_up["found"] and looked_up["is_actor"] and looked_up["type"] == "Organization", looked_up
    parsed = {a["name"]: a["value"] for a in looked_up["attachments"] if a["type"] == "PropertyValue"}
    assert parsed == fields, looked_up["attachments"]

    await peer.follow(iri)
    await peer.wait_for(lambda a: a.get("type") == "Accept" and a.get("actor") == iri)
    assert await peer.errors() == [], "Fedify refused nothing we sent"
