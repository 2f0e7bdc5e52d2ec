"""Publishing: one IRI, every format, conditional GETs, tombstones, collections."""

from __future__ import annotations

import json
from email.utils import format_datetime, parsedate_to_datetime

import pyoxigraph as ox

from tests import samples
from tests.integration.conftest import AS2, RunningNode

AS2_PROFILE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


async def test_one_iri_answers_every_format(node: RunningNode) -> None:
    created = await node.create("initiatives", samples.initiative())
    iri = created["id"]
    assert iri == f"{node.base}/initiatives/repair_cafe_massy"
    expected = {
        AS2: "application/activity+json",
        AS2_PROFILE: AS2_PROFILE,
        "application/ld+json": "application/ld+json",
        "text/turtle": "text/turtle",
        "application/n-triples": "application/n-triples",
        "application/n-quads": "application/n-quads",
        "text/html": "text/html",
    }
    for accept, content_type in expected.items():
        async with node.http.get(iri, headers={"Accept": accept}) as response:
            assert response.status == 200, accept
            assert response.headers["Content-Type"].startswith(content_type), accept
            assert response.headers["Vary"] == "Accept"
            assert 'rel="alternate"; type="text/turtle"' in response.headers["Link"]
            body = await response.read()
        if "json" in accept:
            doc = json.loads(body)
            assert doc["id"] == iri
            assert doc["@context"][0] == "https://www.w3.org/ns/activitystreams"
            assert isinstance(doc["schema:identifier"], list) and len(doc["schema:identifier"]) == 1
            assert isinstance(doc["pair:hasTopic"], list)
            assert "@graph" not in doc
        elif accept == "text/turtle":
            triples = list(ox.parse(body, format=ox.RdfFormat.TURTLE))
            assert any(t.subject.value == iri and t.object.value == "Repair Café de Massy" for t in triples)
        elif accept == "application/n-quads":
            quads = list(ox.parse(body, format=ox.RdfFormat.N_QUADS))
            assert quads and {q.graph_name for q in quads} == {ox.DefaultGraph()}  # a document, on its own
        elif accept == "text/html":
            html = body.decode()
            assert '<meta property="og:title" content="Repair Café de Massy">' in html
            assert "Maison des associations" in html


async def test_private_email_is_never_published(node: RunningNode) -> None:
    created = await node.create("initiatives", samples.initiative())
    assert created["pair:e-mail"] == "benevole@repaircafe-massy.example"  # the editor's view
    assert created["osc:emailPublic"] is False
    for accept in (AS2, "text/turtle", "text/html"):
        async with node.http.get(created["id"], headers={"Accept": accept}) as response:
            assert "benevole@repaircafe-massy.example" not in await response.text()
    public = await node.create("initiatives", samples.initiative("public_mail", **{"osc:emailPublic": True}))
    async with node.http.get(public["id"], headers={"Accept": AS2}) as response:
        assert (await response.json(content_type=None))["pair:e-mail"] == "benevole@repaircafe-massy.example"


async def test_conditional_get(node: RunningNode) -> None:
    iri = (await node.create("initiatives", samples.initiative()))["id"]
    async with node.http.get(iri, headers={"Accept": AS2}) as response:
        etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    async with node.http.get(iri, headers={"Accept": AS2, "If-None-Match": etag}) as response:
        assert response.status == 304
        assert await response.read() == b""
    async with node.http.get(iri, headers={"Accept": "text/turtle", "If-None-Match": etag}) as response:
        assert response.status == 200, "another representation has another ETag"
    async with node.http.get(iri, headers={"Accept": AS2, "If-Modified-Since": modified}) as response:
        assert response.status == 304
    earlier = format_datetime(parsedate_to_datetime(modified).replace(year=2000), usegmt=True)
    async with node.http.get(iri, headers={"Accept": AS2, "If-Modified-Since": earlier}) as response:
        assert response.status == 200
    update = samples.initiative(name="Repair Café Massy")
    async with node.http.put(f"{node.base}/api/initiatives/repair_cafe_massy", json=update, headers=node.auth) as r:
        assert r.status == 200
    async with node.http.get(iri, headers={"Accept": AS2, "If-None-Match": etag}) as response:
        assert response.status == 200
        assert response.headers["ETag"] != etag
        assert (await response.json(content_type=None))["name"] == "Repair Café Massy"


async def test_not_acceptable_and_format_parameter(node: RunningNode) -> None:
    iri = (await node.create("initiatives", samples.initiative()))["id"]
    async with node.http.get(iri, headers={"Accept": "image/png"}) as response:
        assert response.status == 406
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert "text/turtle" in (await response.json(content_type=None))["detail"]
    async with node.http.get(iri + "?format=ttl", headers={"Accept": "text/html"}) as response:
        assert response.headers["Content-Type"].startswith("text/turtle")
    async with node.http.get(iri + "?format=png") as response:
        assert response.status == 406


async def test_unknown_record_is_a_problem_404(node: RunningNode) -> None:
    async with node.http.get(f"{node.base}/initiatives/nobody", headers={"Accept": AS2}) as response:
        assert response.status == 404
        assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_deleted_record_answers_410_tombstone(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    event = await node.create("events", samples.event())
    async with node.http.delete(f"{node.base}/api/events/repair_cafe_decembre", headers=node.auth) as response:
        assert response.status == 200
        assert (await response.json(content_type=None))["type"] == "Tombstone"
    async with node.http.get(event["id"], headers={"Accept": AS2}) as response:
        assert response.status == 410
        body = await response.json(content_type=None)
    assert body["type"] == "Tombstone" and body["id"] == event["id"]
    assert body["formerType"] == "https://www.w3.org/ns/activitystreams#Event"
    async with node.http.get(event["id"], headers={"Accept": "text/html"}) as response:
        assert response.status == 410
    async with node.http.get(f"{node.base}/events", headers={"Accept": AS2}) as response:
        assert (await response.json(content_type=None))["totalItems"] == 0


async def test_collections_are_paged_newest_first(node: RunningNode) -> None:
    for n in range(5):
        doc = samples.initiative(f"init_{n}", name=f"Initiative {n}", published=f"2024-01-0{n + 1}T10:00:00Z")
        await node.create("initiatives", doc)
    async with node.http.get(f"{node.base}/initiatives", headers={"Accept": AS2}) as response:
        collection = await response.json(content_type=None)
    assert collection["type"] == "OrderedCollection" and collection["totalItems"] == 5
    seen: list[str] = []
    url = collection["first"] + "&limit=2"
    while url:
        async with node.http.get(url, headers={"Accept": AS2}) as response:
            page = await response.json(content_type=None)
        assert page["type"] == "OrderedCollectionPage" and page["partOf"] == f"{node.base}/initiatives"
        seen += [item["name"] for item in page["orderedItems"]]
        url = page.get("next", "") and page["next"] + "&limit=2"
    assert seen == [f"Initiative {n}" for n in range(4, -1, -1)]


async def test_context_is_served_as_json_ld(node: RunningNode) -> None:
    async with node.http.get(f"{node.base}/ns/context.jsonld") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/ld+json")
        context = (await response.json(content_type=None))["@context"]
    assert context["pair"] == "http://virtual-assembly.org/ontologies/pair#"


async def test_vocabularies_are_linked_data(node: RunningNode) -> None:
    async with node.http.get(f"{node.base}/vocab/themes/repair", headers={"Accept": "text/turtle"}) as response:
        assert response.status == 200
        triples = list(ox.parse(await response.read(), format=ox.RdfFormat.TURTLE))
    labels = {t.object.value for t in triples if t.predicate.value.endswith("prefLabel")}
    assert len(labels) >= 2
    async with node.http.get(f"{node.base}/vocab/needs", headers={"Accept": "text/html"}) as response:
        assert "volunteers" in await response.text()
    async with node.http.get(f"{node.base}/vocab/themes/nope") as response:
        assert response.status == 404


async def test_html_pages_name_what_they_link_to(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    event = await node.create("events", samples.event())
    async with node.http.get(event["id"], headers={"Accept": "text/html"}) as response:
        html = await response.text()
    owner = f"{node.base}/initiatives/repair_cafe_massy"
    assert f'<a href="{owner}">Repair Café de Massy</a>' in html
    assert "sam. 13 déc. 2025, 14h–18h" in html and "2025-12-13T14:00:00+01:00" not in html
