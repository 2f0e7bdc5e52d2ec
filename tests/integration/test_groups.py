"""Thematic and local Group actors on a real node: found by WebFinger when records match, served
as `Group`, followed (Accept signed by the group), announcing matching records to their
followers only; and the node's starter pack (FEP-7aa9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node import groups
from node.auth import Principal
from node.convert.common import now_utc
from node.keys import DELIVERER, DIRECTORY, ENGINE
from node.records import Record
from node.storage.tables import activities, deliveries
from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeActor, FakeFediverse
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node
from tests.integration.test_inbox_security import follow
from vocab.jsonld import expand
from vocab.loader import make_document_loader, own_context

ADMIN = Principal(0, "admin", frozenset())
THEMES = samples.THEMES
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def massy(**extra: Any) -> dict[str, Any]:
    place = {"type": "Place", "name": "Halle de Massy", "igeo:codeINSEE": "91377",
             "address": {"type": "PostalAddress", "postalCode": "91300", "addressLocality": "Massy",
                         "addressCountry": "FR"}}  # fmt: skip
    return {"location": place, **extra}


def market(slug: str = "marche_bio", theme: str = "organic") -> dict[str, Any]:
    """An event about organic food in Massy (Essonne)."""
    return samples.event(slug=slug, name="Marché bio", **{"pair:hasTopic": [THEMES + theme]}, **massy())


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1",
                               OSCARTES_GROUP_ACTORS="1")  # fmt: skip
    await running.create("initiatives", samples.initiative())  # repair, Massy
    yield running
    await stop_node(running)


@pytest.fixture
async def fake() -> AsyncIterator[FakeFediverse]:
    server = await FakeFediverse("127.0.0.4").start()
    yield server
    await server.stop()


async def webfinger(node: RunningNode, resource: str) -> tuple[int, dict[str, Any]]:
    async with node.http.get(f"{node.base}/.well-known/webfinger", params={"resource": resource}) as r:
        return r.status, await r.json(content_type=None)


async def get_as2(node: RunningNode, url: str) -> tuple[int, dict[str, Any]]:
    async with node.http.get(url, headers={"Accept": AS2}) as r:
        return r.status, await r.json(content_type=None)


def self_link(jrd: dict[str, Any]) -> str:
    return next(str(link["href"]) for link in jrd["links"] if link["rel"] == "self")


async def test_webfinger_finds_groups_that_have_records(node: RunningNode) -> None:
    host = node.config.host
    assert (await webfinger(node, f"acct:alimentation_essonne@{host}"))[0] == 404  # no food record yet
    await node.create("events", market())

    status, jrd = await webfinger(node, f"acct:alimentation_essonne@{host}")
    assert status == 200, jrd
    assert jrd["subject"] == f"acct:alimentation_essonne@{host}"
    assert self_link(jrd) == f"{node.base}/groups/food-91"
    # A broader theme, a place alone, a commune by name, the group's own URL.
    for user, key in (("reemploi", "reuse"), ("essonne", "91"), ("massy_91", "91377"), ("bio_91377", "organic-91377")):
        status, jrd = await webfinger(node, f"acct:{user}@{host}")
        assert status == 200 and self_link(jrd) == f"{node.base}/groups/{key}", (user, jrd)
    status, jrd = await webfinger(node, f"{node.base}/groups/reparation-91")
    assert status == 404  # a key, not a username: repair is `repair`
    status, jrd = await webfinger(node, f"{node.base}/groups/repair-91")
    assert status == 200 and jrd["subject"] == f"acct:reparation_essonne@{host}"

    for user in ("alimentation_paris", "sante", "paris", "massy_92", "nobody", "alimentation_mars"):
        assert (await webfinger(node, f"acct:{user}@{host}"))[0] == 404, user
    # The initiative is still found first, and the node's own actor too.
    _, jrd = await webfinger(node, f"acct:repair_cafe_massy@{host}")
    assert self_link(jrd) == f"{node.base}/initiatives/repair_cafe_massy"
    assert self_link((await webfinger(node, f"acct:node@{host}"))[1]) == f"{node.base}/actor"


async def test_the_group_actor_document(node: RunningNode) -> None:
    await node.create("events", market())
    iri = f"{node.base}/groups/food-91"
    status, doc = await get_as2(node, iri)
    assert status == 200, doc
    assert doc["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert doc["id"] == iri and doc["type"] == "Group"
    assert doc["preferredUsername"] == "alimentation_essonne" and doc["name"] == "Alimentation · Essonne"
    assert "Bio" in doc["summary"] and "Essonne" in doc["summary"]
    assert doc["inbox"] == f"{iri}/inbox" and doc["outbox"] == f"{iri}/outbox"
    assert doc["followers"] == f"{iri}/followers" and doc["featured"] == f"{iri}/featured"
    assert doc["endpoints"]["sharedInbox"] == f"{node.base}/inbox"
    assert doc["publicKey"]["id"] == f"{iri}#main-key" and doc["publicKey"]["owner"] == iri
    assert "BEGIN PUBLIC KEY" in doc["publicKey"]["publicKeyPem"]
    assert doc["manuallyApprovesFollowers"] is False and doc["discoverable"] is True
    # The loop closes: preferredUsername@host resolves to this id.
    _, jrd = await webfinger(node, f"acct:{doc['preferredUsername']}@{node.config.host}")
    assert self_link(jrd) == iri

    status, featured = await get_as2(node, doc["featured"])
    assert status == 200 and featured["orderedItems"] == [f"{node.base}/events/marche_bio"]
    status, followers = await get_as2(node, doc["followers"])
    assert status == 200 and followers["totalItems"] == 0
    async with node.http.get(iri, headers={"Accept": "text/html"}) as r:
        page = await r.text()
        assert r.status == 200 and "Marché bio" in page and "@alimentation_essonne@" in page
    assert (await get_as2(node, f"{node.base}/groups/food-75"))[0] == 404  # nothing in Paris
    assert (await get_as2(node, f"{node.base}/groups/nope"))[0] == 404


async def test_nothing_when_the_host_has_not_turned_groups_on(tmp_path: Path) -> None:
    node = await start_node(tmp_path / "off", "", host="127.0.0.2")
    try:
        await node.create("initiatives", samples.initiative())
        await node.create("events", market())
        assert (await webfinger(node, f"acct:alimentation@{node.config.host}"))[0] == 404
        assert (await get_as2(node, f"{node.base}/groups/food"))[0] == 404
        stored = await node.server.app[DIRECTORY].get("event", "marche_bio")
        async with node.server.app[ENGINE].begin() as conn:
            assert await groups.announce_to_groups(conn, node.config, stored.record, "Create", now_utc()) == 0
    finally:
        await stop_node(node)


async def test_an_initiative_takes_the_name_from_a_group(node: RunningNode) -> None:
    host = node.config.host
    status, jrd = await webfinger(node, f"acct:reparation@{host}")
    assert status == 200 and self_link(jrd) == f"{node.base}/groups/repair"
    await node.create("initiatives", samples.initiative("reparation", name="Réparation"))

    _, jrd = await webfinger(node, f"acct:reparation@{host}")
    assert self_link(jrd) == f"{node.base}/initiatives/reparation"  # initiatives win
    _, jrd = await webfinger(node, f"acct:reparation_groupe@{host}")
    assert self_link(jrd) == f"{node.base}/groups/repair"  # same IRI, same keys and followers
    _, doc = await get_as2(node, f"{node.base}/groups/repair")
    assert doc["preferredUsername"] == "reparation_groupe"
    # A group first asked for by the name an initiative holds gets the suffix at once.
    await node.create("initiatives", samples.initiative("alimentation", name="Alimentation"))
    await node.create("events", market())
    _, jrd = await webfinger(node, f"acct:alimentation_groupe@{host}")
    assert self_link(jrd) == f"{node.base}/groups/food", jrd


async def follow_group(node: RunningNode, fake: FakeFediverse, who: FakeActor, group: str) -> None:
    accepted = len(fake.received("Accept"))
    status, _ = await fake.post(f"{group}/inbox", follow(who, group), who)
    assert status == 202
    await eventually(lambda: _true(len(fake.received("Accept")) > accepted), what=f"{who.name} accepted by {group}")


async def _true(value: bool) -> bool:
    return value


async def test_a_follow_of_a_group_is_accepted_by_the_group(node: RunningNode, fake: FakeFediverse) -> None:
    await node.create("events", market())
    group = f"{node.base}/groups/food-91"
    assert (await get_as2(node, group))[0] == 200
    await follow_group(node, fake, fake.actor("ann"), group)
    accept = fake.received("Accept")[-1]
    assert accept["actor"] == group and accept["object"]["object"] == group
    signature = fake.arrivals[-1].headers["Signature"]
    assert f'keyId="{group}#main-key"' in signature
    _, followers = await get_as2(node, f"{group}/followers")
    assert followers["orderedItems"] == [fake.actors["ann"].iri]


async def _announce(node: RunningNode, record: Record, kind: str = "Create") -> int:
    async with node.server.app[ENGINE].begin() as conn:
        return await groups.announce_to_groups(conn, node.config, record, kind, now_utc())


async def _rows(node: RunningNode, table: Any) -> list[Any]:
    async with node.server.app[ENGINE].connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


async def test_announces_go_to_matching_groups_with_followers(node: RunningNode, fake: FakeFediverse) -> None:
    directory = node.server.app[DIRECTORY]
    await directory.create("event", market("marche_bio", "organic"), ADMIN, fanout=False)
    await directory.create("need", samples.proposal(slug="composteurs", **{"pair:hasTopic": [THEMES + "composting"]},
                                                    **massy()), ADMIN, fanout=False)  # fmt: skip
    base = node.base
    # Followed: food in Essonne (ann), Essonne (ben), repair (cat). Made but not followed: reuse.
    for name, key in (("ann", "food-91"), ("ben", "91"), ("cat", "repair")):
        await follow_group(node, fake, fake.actor(name), f"{base}/groups/{key}")
    assert (await get_as2(node, f"{base}/groups/reuse"))[0] == 200
    before = len(await _rows(node, deliveries))

    organic = (await directory.get("event", "marche_bio")).record
    # organic is narrower than food: the food-in-Essonne group announces it; so does Essonne.
    assert await _announce(node, organic) == 2
    announced = [json.loads(r.doc) for r in await _rows(node, activities) if r.type == "Announce"]
    assert sorted(a["actor"] for a in announced) == [f"{base}/groups/91", f"{base}/groups/food-91"]
    for activity in announced:
        assert activity["object"] == organic.iri
        assert activity["to"] == [PUBLIC] and activity["cc"] == [f"{activity['actor']}/followers"]
    rows = (await _rows(node, deliveries))[before:]
    assert [r.inbox for r in rows] == [f"{fake.base}/inbox"] * 2
    assert await _announce(node, organic, "Update") == 0  # followers have it already
    assert await _announce(node, organic, "Delete") == 0

    compost = (await directory.get("need", "composteurs")).record
    # composting < waste < reuse: the reuse group has no follower; Essonne's does.
    assert await _announce(node, compost) == 1
    assert await _announce(node, compost, "Update") == 0

    fake.arrivals.clear()
    await node.server.app[DELIVERER].run_once()
    got = await eventually(lambda: _true(len(fake.received("Announce")) == 3), what="three Announces delivered")
    assert got
    by = {(a["actor"], a["object"]) for a in fake.received("Announce")}
    assert by == {(f"{base}/groups/food-91", organic.iri), (f"{base}/groups/91", organic.iri),
                  (f"{base}/groups/91", compost.iri)}  # fmt: skip
    for arrival in fake.arrivals:
        assert f'keyId="{arrival.body["actor"]}#main-key"' in arrival.headers["Signature"]


async def test_a_new_initiative_is_announced_but_not_its_updates(node: RunningNode, fake: FakeFediverse) -> None:
    await follow_group(node, fake, fake.actor("ann"), f"{node.base}/groups/repair")
    directory = node.server.app[DIRECTORY]
    stored = await directory.create("initiative", samples.initiative("atelier_velo", name="Atelier vélo"), ADMIN,
                                    fanout=False)  # fmt: skip
    assert await _announce(node, stored.record, "Update") == 0
    assert await _announce(node, stored.record, "Create") == 1


async def test_the_starter_pack(node: RunningNode) -> None:
    base = node.base
    await node.create("initiatives", samples.initiative("atelier_velo", name="Atelier vélo"))
    await node.create("initiatives", samples.initiative("ferme_fermee", name="Ferme fermée"))
    async with node.http.delete(f"{base}/api/initiatives/ferme_fermee", headers=node.auth) as r:
        assert r.status == 200

    _, actor = await get_as2(node, f"{base}/actor")
    status, listed = await get_as2(node, actor["featuredCollections"])
    assert status == 200 and listed["orderedItems"] == [f"{base}/starter-pack"]
    status, pack = await get_as2(node, f"{base}/starter-pack")
    assert status == 200, pack
    assert pack["id"] == f"{base}/starter-pack" and pack["type"] == "FeaturedCollection"
    assert pack["attributedTo"] == f"{base}/actor" and pack["name"] and pack["discoverable"] is True
    members = [f"{base}/initiatives/repair_cafe_massy", f"{base}/initiatives/atelier_velo"]
    assert pack["totalItems"] == 2
    assert [item["featuredObject"] for item in pack["orderedItems"]] == members  # live, local, oldest first
    for item in pack["orderedItems"]:
        assert item["type"] == "FeaturedItem" and item["featuredObjectType"] == "Organization"
        status, stamp = await get_as2(node, item["featureAuthorization"])
        assert status == 200 and stamp["type"] == "FeatureAuthorization"
        assert stamp["id"] == item["featureAuthorization"]
        assert stamp["interactingObject"] == pack["id"] and stamp["interactionTarget"] == item["featuredObject"]
    assert (await get_as2(node, f"{base}/initiatives/ferme_fermee/stamps/starter-pack"))[0] == 404
    async with node.http.get(f"{base}/starter-pack", headers={"Accept": "text/html"}) as r:
        page = await r.text()
        assert r.status == 200 and f"@atelier_velo@{node.config.host}" in page and "Ferme fermée" not in page
    async with node.http.get(f"{base}/") as r:
        assert f"{base}/starter-pack" in await r.text()


async def test_what_the_documents_mean(node: RunningNode) -> None:
    """Every key of the group actor, the starter pack and a stamp expands to the intended term."""
    await node.create("events", market())
    loader = make_document_loader({node.config.context_url: own_context()})
    fep = "https://w3id.org/fep/7aa9#"
    _, group = await get_as2(node, f"{node.base}/groups/food-91")
    expanded = expand(group, loader=loader, strict=True)[0]
    assert expanded["@type"] == ["https://www.w3.org/ns/activitystreams#Group"]
    assert "http://joinmastodon.org/ns#discoverable" in expanded
    _, pack = await get_as2(node, f"{node.base}/starter-pack")
    expanded = expand(pack, loader=loader, strict=True)[0]
    assert expanded["@type"] == [f"{fep}FeaturedCollection"]
    item = expanded["https://www.w3.org/ns/activitystreams#items"][0]["@list"][0]  # orderedItems: an @list
    assert item[f"{fep}featuredObject"] == [{"@id": f"{node.base}/initiatives/repair_cafe_massy"}]
    _, stamp = await get_as2(node, pack["orderedItems"][0]["featureAuthorization"])
    expanded = expand(stamp, loader=loader, strict=True)[0]
    target = pack["orderedItems"][0]["featuredObject"]
    assert expanded["https://gotosocial.org/ns#interactionTarget"] == [{"@id": target}]
    _, actor = await get_as2(node, f"{node.base}/actor")
    assert expand(actor, loader=loader)[0][f"{fep}featuredCollections"] == [{"@id": f"{node.base}/actor/collections"}]
