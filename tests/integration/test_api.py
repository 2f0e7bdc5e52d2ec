"""The authoring API: tokens and roles, validation listing every bad field, nothing half-written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import samples
from tests.integration.conftest import AS2, RunningNode


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = await response.json(content_type=None)
    assert body["status"] == status and body["detail"]
    return body


async def test_create_update_delete_every_kind(node: RunningNode) -> None:
    documents = {
        "initiatives": samples.initiative(),
        "events": samples.event(),
        "needs": samples.proposal(),
        "offers": samples.proposal("offers", "pret_outillage", category="equipment", name="Prêt d'outils"),
        "resources": samples.resource(),
        "places": samples.place(),
    }
    for collection, doc in documents.items():
        async with await node.post(collection, doc) as response:
            assert response.status == 201, await response.text()
            slug = doc["id"].split("/")[1]
            assert response.headers["Location"] == f"{node.base}/{collection}/{slug}"
            assert response.headers["Content-Location"] == f"{node.base}/api/{collection}/{slug}"
            created = await response.json(content_type=None)
        assert created["id"] == response.headers["Location"]
        changed = {**doc, "name": doc["name"] + " (modifié)"}
        async with node.http.put(response.headers["Content-Location"], json=changed, headers=node.auth) as r:
            assert r.status == 200, await r.text()
            assert (await r.json(content_type=None))["name"].endswith("(modifié)")
    async with node.http.get(f"{node.base}/initiatives/repair_cafe_massy", headers={"Accept": AS2}) as r:
        initiative = await r.json(content_type=None)
    assert initiative["pair:needs"] == [f"{node.base}/needs/benevoles_reparateurs"]
    assert initiative["pair:offers"] == [f"{node.base}/offers/pret_outillage"]
    async with node.http.get(f"{node.base}/needs/benevoles_reparateurs", headers={"Accept": AS2}) as r:
        need = await r.json(content_type=None)
    assert need["publishes"]["action"] == "deliverService"
    assert need["publishes"]["id"] == f"{node.base}/needs/benevoles_reparateurs#primary"
    async with node.http.get(f"{node.base}/offers/pret_outillage", headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["publishes"]["action"] == "transfer"
    async with node.http.get(f"{node.base}/events/repair_cafe_decembre", headers={"Accept": AS2}) as r:
        event = await r.json(content_type=None)
    assert event["summary"].startswith("sam. 13 déc. 2025, 14h–18h · Maison des associations")
    assert [(p["type"], p.get("rdf:type")) for p in event["location"]] == [("Place", ["pair:Place"]),
                                                                           ("VirtualLocation", None)]  # fmt: skip
    async with node.http.delete(f"{node.base}/api/needs/benevoles_reparateurs", headers=node.auth) as r:
        assert r.status == 200
    async with node.http.get(f"{node.base}/initiatives/repair_cafe_massy", headers={"Accept": AS2}) as r:
        assert "pair:needs" not in await r.json(content_type=None)


async def test_slug_is_minted_from_the_name_when_no_id(node: RunningNode) -> None:
    doc = samples.initiative()
    del doc["id"]
    first = await node.create("initiatives", doc)
    second = await node.create("initiatives", doc)
    assert first["id"].endswith("/initiatives/repair_cafe_de_massy")
    assert second["id"].endswith("/initiatives/repair_cafe_de_massy_2")
    assert first["preferredUsername"] == "repair_cafe_de_massy"


async def test_taken_iri_is_a_conflict(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    async with await node.post("initiatives", samples.initiative()) as response:
        await problem(response, 409)


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer osc_not-a-token", "Basic dXNlcjpwYXNz", "bearer   "]
)
async def test_missing_or_invalid_token_is_401(node: RunningNode, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with node.http.post(f"{node.base}/api/initiatives", json=samples.initiative(), headers=headers) as r:
        await problem(r, 401)
    async with node.http.get(f"{node.base}/initiatives", headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["totalItems"] == 0


async def test_editor_scope(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    await node.create("initiatives", samples.initiative("autre_asso", name="Autre asso"))
    mine = f"{node.base}/initiatives/repair_cafe_massy"
    editor = await node.token("editor", [mine])
    async with await node.post("events", samples.event(), token=editor) as r:
        assert r.status == 201, await r.text()
    other_event = samples.event("autre_evenement", owner="initiatives/autre_asso")
    async with await node.post("events", other_event, token=editor) as r:
        await problem(r, 403)
    async with await node.post("initiatives", samples.initiative("nouvelle"), token=editor) as r:
        await problem(r, 403)
    auth = {"Authorization": f"Bearer {editor}"}
    async with node.http.put(f"{node.base}/api/initiatives/repair_cafe_massy", json=samples.initiative(),
                             headers=auth) as r:  # fmt: skip
        assert r.status == 200
    async with node.http.put(f"{node.base}/api/initiatives/autre_asso", json=samples.initiative("autre_asso"),
                             headers=auth) as r:  # fmt: skip
        await problem(r, 403)
    moved = samples.event(owner="initiatives/autre_asso")
    async with node.http.put(f"{node.base}/api/events/repair_cafe_decembre", json=moved, headers=auth) as r:
        await problem(r, 403)
    async with node.http.delete(f"{node.base}/api/initiatives/autre_asso", headers=auth) as r:
        await problem(r, 403)


BAD_FIELDS = [
    ("initiatives", {"name": ""}, "#/name"),
    ("initiatives", {"name": None}, "#/name"),
    ("initiatives", {"pair:hasTopic": ["https://w3id.org/oscartes/vocab/themes/astrology"]}, "#/pair:hasTopic"),
    ("initiatives", {"pair:homePage": "not a url"}, "#/pair:homePage"),
    ("initiatives", {"pair:e-mail": "nobody"}, "#/pair:e-mail"),
    ("initiatives", {"essglobal:legalForm": "https://w3id.org/oscartes/vocab/themes/food"}, "#/essglobal:legalForm"),
    ("initiatives", {"schema:identifier": [{"propertyID": "SIRET", "value": "123"}]}, "#/schema:identifier/0/value"),
    ("initiatives", {"schema:identifier": [{"propertyID": "SIREN", "value": "732829321"}]},
     "#/schema:identifier/0/value"),
    ("initiatives", {"location": {"latitude": 95, "longitude": 2}}, "#/location/0/latitude"),
    ("initiatives", {"location": {"latitude": 48.7}}, "#/location/0/latitude"),
    ("initiatives", {"location": {"latitude": 48.7, "longitude": 2.2, "igeo:codeINSEE": "123"}},
     "#/location/0/igeo:codeINSEE"),
    ("initiatives", {"favouriteColour": "green"}, "#/favouriteColour"),
    ("initiatives", {"type": ["Person"]}, "#/type"),
    ("initiatives", {"preferredUsername": "Not-A-Slug"}, "#/preferredUsername"),
    ("events", {"endTime": "2025-12-13T10:00:00+01:00"}, "#/endTime"),
    ("events", {"startTime": "next tuesday"}, "#/startTime"),
    ("events", {"startTime": "2025-12-13T14:00:00"}, "#/startTime"),
    ("events", {"timezone": "Mars/Olympus"}, "#/timezone"),
    ("events", {"attributedTo": "initiatives/nobody"}, "#/attributedTo"),
    ("needs", {"purpose": "offer"}, "#/purpose"),
    ("needs", {"publishes": {"type": "Intent", "resourceClassifiedAs": ["https://example.org/x"]}},
     "#/publishes/0/resourceClassifiedAs"),
    ("needs", {"publishes": None}, "#/publishes"),
]


@pytest.mark.parametrize(("collection", "change", "pointer"), BAD_FIELDS)
async def test_each_bad_field_is_named(node: RunningNode, collection: str, change: dict[str, Any],
                                       pointer: str) -> None:  # fmt: skip
    await node.create("initiatives", samples.initiative())
    base = {"initiatives": samples.initiative("other"), "events": samples.event(),
            "needs": samples.proposal()}[collection]  # fmt: skip
    doc = {k: v for k, v in {**base, **change}.items() if v is not None}
    async with await node.post(collection, doc) as response:
        body = await problem(response, 422)
    assert pointer in [e["pointer"] for e in body["errors"]], body


async def test_all_errors_are_listed_at_once(node: RunningNode) -> None:
    doc = samples.initiative(name="", **{"pair:homePage": "nope", "location": {"latitude": 100, "longitude": 500}})
    async with await node.post("initiatives", doc) as response:
        body = await problem(response, 422)
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"#/name", "#/pair:homePage", "#/location/0/latitude", "#/location/0/longitude"} <= pointers


async def test_nothing_half_written(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    bad = samples.proposal(**{"publishes": {"type": "Intent", "resourceClassifiedAs": ["https://example.org/x"]}})
    async with await node.post("needs", bad) as response:
        await problem(response, 422)
    async with node.http.get(f"{node.base}/needs", headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["totalItems"] == 0
    async with node.http.get(f"{node.base}/initiatives/repair_cafe_massy", headers={"Accept": AS2}) as r:
        assert "pair:needs" not in await r.json(content_type=None)


async def test_malformed_bodies(node: RunningNode) -> None:
    url = f"{node.base}/api/initiatives"
    as_json = {**node.auth, "Content-Type": "application/json"}
    async with node.http.post(url, data=b'{"name": "x",\n "oops"}', headers=as_json) as r:
        body = await problem(r, 400)
    assert "line 2" in body["detail"]
    async with node.http.post(url, data=b"name=x", headers={**node.auth, "Content-Type": "text/plain"}) as r:
        await problem(r, 415)
    async with node.http.post(url, data=b"[1, 2]", headers={**node.auth, "Content-Type": "application/json"}) as r:
        await problem(r, 422)
    huge = json.dumps(samples.initiative(summary="x" * 2_000_000)).encode()
    async with node.http.post(url, data=huge, headers={**node.auth, "Content-Type": "application/json"}) as r:
        await problem(r, 413)
    unknown_context = {**samples.initiative(), "@context": "https://evil.example/context.jsonld"}
    async with await node.post("initiatives", unknown_context) as r:
        body = await problem(r, 422)
    assert body["errors"][0]["pointer"] == "#/@context"
    assert "evil.example" in body["errors"][0]["detail"]


async def test_put_and_delete_of_missing_or_deleted(node: RunningNode) -> None:
    url = f"{node.base}/api/initiatives/ghost"
    async with node.http.put(url, json=samples.initiative("ghost"), headers=node.auth) as r:
        await problem(r, 404)
    await node.create("initiatives", samples.initiative("ghost"))
    async with node.http.delete(url, headers=node.auth) as r:
        assert r.status == 200
    async with node.http.delete(url, headers=node.auth) as r:
        await problem(r, 410)
    async with node.http.put(url, json=samples.initiative("ghost"), headers=node.auth) as r:
        await problem(r, 410)


async def test_id_cannot_change_on_update(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    moved = samples.initiative("elsewhere")
    async with node.http.put(f"{node.base}/api/initiatives/repair_cafe_massy", json=moved, headers=node.auth) as r:
        body = await problem(r, 422)
    assert body["errors"][0]["pointer"] == "#/id"


async def test_revoked_token_is_refused(node: RunningNode) -> None:
    from node.auth import revoke_token
    from node.storage.db import make_engine

    editor = await node.token("admin", [])
    async with await node.post("places", {"name": "Salle"}, token=editor) as r:
        assert r.status == 201
    engine = make_engine(node.config.effective_database_url)
    async with engine.begin() as conn:
        assert await revoke_token(conn, 2)
    await engine.dispose()
    async with await node.post("places", {"name": "Salle 2"}, token=editor) as r:
        body = await problem(r, 401)
    assert "revoked" in body["detail"]


async def test_health(node: RunningNode) -> None:
    async with node.http.get(f"{node.base}/healthz") as r:
        assert r.status == 200
        assert await r.json() == {"status": "ok", "pendingIndexWork": 0}


@pytest.mark.parametrize("collection", ["initiatives", "events", "needs", "places", "resources"])
async def test_published_document_goes_back_in_unchanged(node: RunningNode, collection: str) -> None:
    """Same shape in and out: what the node publishes, sent back, changes nothing but `updated`."""
    await node.create("initiatives", samples.initiative())
    doc = {"initiatives": samples.initiative("second"), "events": samples.event(), "needs": samples.proposal(),
           "places": samples.place(), "resources": samples.resource()}[collection]  # fmt: skip
    created = await node.create(collection, doc)
    async with node.http.get(created["id"], headers={"Accept": AS2}) as r:
        published = await r.json(content_type=None)
    api_url = created["id"].replace(node.base, f"{node.base}/api")
    async with node.http.put(api_url, json=published, headers=node.auth) as r:
        assert r.status == 200, await r.text()
    async with node.http.get(created["id"], headers={"Accept": AS2}) as r:
        again = await r.json(content_type=None)
    assert {k: v for k, v in again.items() if k != "updated"} == {k: v for k, v in published.items() if k != "updated"}
