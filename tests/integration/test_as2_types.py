"""Every document the node serves as `application/activity+json` has one `type`, a string.

Clients that read `type` as a string (microblog.pub and others) fail on a list: they can
neither follow such an actor nor be followed by it. The walk starts from the node's actors and
collections and follows every link on the node's host that answers as AS2, so a new kind of
document is checked without being listed here. The PAIR and ESSGlobal types stay in the
linked-data views (`application/ld+json`, Turtle)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import rdflib

from node.records import COLLECTIONS
from tests import samples
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node

AS2_PROFILE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
PAIR = "http://virtual-assembly.org/ontologies/pair#"
ESSGLOBAL = "http://purl.org/essglobal/vocab/"
#: What a strict client accepts as an actor: `type` compared as a string.
STRICT_ACTOR_TYPES = ("Person", "Organization", "Group", "Application", "Service")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path / "n", "", OSCARTES_GROUP_ACTORS="1")
    await running.create("initiatives", samples.initiative(icon={"type": "Image", "url": "https://example.org/l.png"}))
    await running.create("initiatives", samples.initiative("atelier_velo", type=["Organization", "pair:Project"],
                                                           name="Atelier vélo"))  # fmt: skip
    await running.create("events", samples.event())
    await running.create("needs", samples.proposal())
    await running.create("offers", samples.proposal("offers", "pret_outillage", category="equipment"))
    await running.create("resources", samples.resource())
    await running.create("places", samples.place())
    await running.create("resources", samples.resource("guide_perime"))
    changed = samples.event(name="Repair Café de décembre (complet)")
    async with running.http.put(f"{running.base}/api/events/repair_cafe_decembre", json=changed,
                                headers=running.auth) as r:  # fmt: skip
        assert r.status == 200
    async with running.http.delete(f"{running.base}/api/resources/guide_perime", headers=running.auth) as r:
        assert r.status == 200
    yield running
    await stop_node(running)


def nodes(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object of a document (the document itself, embedded objects, list items)."""
    if isinstance(value, dict):
        yield path or "/", value
        for key, inner in value.items():
            if key != "@context":
                yield from nodes(inner, f"{path}/{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from nodes(inner, f"{path}/{i}")


def links(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key != "@context":
                yield from links(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from links(inner)


async def walk(node: RunningNode, seeds: list[str], limit: int = 400) -> dict[str, Any]:
    """URL -> document, for every URL on the node's host reachable from `seeds` that answers AS2."""
    seen: dict[str, Any] = {}
    queue = list(seeds)
    visited: set[str] = set()
    while queue and len(visited) < limit:
        url = queue.pop(0).split("#", 1)[0]
        if url in visited or not url.startswith(node.base + "/") or "/ns/" in url or "/vocab/" in url:
            continue
        visited.add(url)
        async with node.http.get(url, headers={"Accept": AS2}, allow_redirects=False) as response:
            media = response.headers.get("Content-Type", "")
            if response.status not in (200, 410) or not media.startswith("application/activity+json"):
                continue
            doc = json.loads(await response.read())
        seen[url] = doc
        queue += [link for link in links(doc) if link.startswith(node.base + "/")]
    return seen


async def test_every_as2_document_has_one_string_type(node: RunningNode) -> None:
    base = node.base
    seeds = [f"{base}/actor", f"{base}/groups/repair", f"{base}/starter-pack", f"{base}/dataset/changes",
             f"{base}/resources/guide_perime", *(f"{base}/{c}" for c in COLLECTIONS),
             *(f"{base}/{c}?page=true" for c in COLLECTIONS)]  # fmt: skip
    documents = await walk(node, seeds)
    problems = [f"{url} {where}: type {doc['type']!r}"
                for url, document in documents.items() for where, doc in nodes(document)
                if "type" in doc and not isinstance(doc["type"], str)]  # fmt: skip
    assert problems == []
    served = {doc["type"] for document in documents.values() for _, doc in nodes(document) if "type" in doc}
    assert served >= {
        "Organization", "Event", "Note", "Document", "Place", "PostalAddress", "PropertyValue", "Image",
        "Hashtag", "Intent", "Collection", "VirtualLocation", "Group", "Application", "Tombstone",
        "Create", "Update", "Delete", "OrderedCollection", "OrderedCollectionPage", "FeaturedCollection",
    }, "the walk reached every kind of document"  # fmt: skip


async def test_a_strict_client_reads_every_actor(node: RunningNode) -> None:
    for path in ("initiatives/repair_cafe_massy", "initiatives/atelier_velo", "groups/repair", "actor"):
        for accept in (AS2, AS2_PROFILE):
            async with node.http.get(f"{node.base}/{path}", headers={"Accept": accept}) as response:
                actor = json.loads(await response.read())
            assert isinstance(actor["type"], str) and actor["type"] in STRICT_ACTOR_TYPES, (path, accept)


async def test_linked_data_views_keep_the_pair_and_essglobal_types(node: RunningNode) -> None:
    iri = f"{node.base}/initiatives/repair_cafe_massy"
    async with node.http.get(iri, headers={"Accept": "application/ld+json"}) as response:
        assert response.headers["Content-Type"].startswith("application/ld+json")
        doc = json.loads(await response.read())
    assert doc["type"] == ["Organization", "pair:Organization", "essglobal:SSEInitiative"]
    assert doc["location"]["type"] == ["Place", "pair:Place"]
    async with node.http.get(iri, headers={"Accept": "text/turtle"}) as response:
        graph = rdflib.Graph().parse(data=await response.text(), format="turtle")
    types = {str(t) for t in graph.objects(rdflib.URIRef(iri), rdflib.RDF.type)}
    assert types == {"https://www.w3.org/ns/activitystreams#Organization", PAIR + "Organization",
                     ESSGLOBAL + "SSEInitiative"}  # fmt: skip
    async with node.http.get(f"{node.base}/initiatives/atelier_velo", headers={"Accept": AS2}) as response:
        project = json.loads(await response.read())
    assert project["type"] == "Organization" and project["rdf:type"] == ["pair:Project"]
