"""/search over HTTP on multi-origin data: every filter and their combinations, sorting, paging,
facets, the feeds and every 400. Records of a second origin come in through the node's own
ingestion (node.ingest), as a follow would bring them; one test follows a real node."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import icalendar
import pytest

from node import origins
from node.convert.as2 import contexts
from node.convert.common import now_utc
from node.ingest import Origin, ingest
from node.storage.db import make_engine
from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_region import ENV, api, held

THEMES = samples.THEMES
REMOTE = "http://127.0.0.9:8000"  # never contacted: its records are ingested as a copy would be
REMOTE_GRAPH = f"{REMOTE}/dataset"


def place(lat: float, lon: float, insee: str) -> dict[str, Any]:
    return {"type": "Place", "latitude": lat, "longitude": lon, "igeo:codeINSEE": insee}


def at(lat: float, lon: float, insee: str) -> list[dict[str, Any]]:
    return [place(lat, lon, insee)]


async def _remote(node: RunningNode) -> None:
    """Records of another origin, read and stored by node.ingest like a followed node's page."""
    docs = [
        samples.initiative("atelier_velo_palaiseau", name="Atelier vélo de Palaiseau", summary="Réparations de vélos",
                           location=place(48.7145, 2.2457, "91477"), **{"pair:hasTopic": [THEMES + "cycling"]}),
        samples.initiative("amap_marseille", name="AMAP de Marseille", summary="Paniers de légumes bio",
                           location=place(43.2965, 5.3698, "13055"), **{"pair:hasTopic": [THEMES + "organic"]}),
        samples.event("fete_velo", owner="initiatives/atelier_velo_palaiseau", name="Fête du vélo",
                      startTime="2026-06-01T10:00:00+02:00", endTime="2026-06-01T18:00:00+02:00",
                      location=at(48.7145, 2.2457, "91477"), **{"pair:hasTopic": [THEMES + "cycling"]}),
    ]  # fmt: skip
    for doc in docs:
        doc["id"] = f"{REMOTE}/{doc['id']}"
        doc.pop("pair:e-mail", None)
    engine = make_engine(node.config.effective_database_url)
    try:
        async with engine.begin() as conn:
            found = origins.Discovered(f"{REMOTE}/actor", REMOTE_GRAPH, REMOTE, f"{REMOTE}/dataset/changes",
                                       node.config.license, "Nœud voisin")  # fmt: skip
            row = await origins.register(conn, found, now_utc(), followed=True)
        outcome = await ingest(engine, node.config, Origin.of(row), docs, contexts(f"{REMOTE}/ns/context.jsonld"),
                               now_utc())  # fmt: skip
        assert not outcome.refused and len(outcome.written) == 3, outcome.refused
    finally:
        await engine.dispose()


@pytest.fixture
async def world(node: RunningNode) -> AsyncIterator[RunningNode]:
    create = node.create
    await create("initiatives", samples.initiative(
        "repair_massy", name="Repair Café de Massy", location=place(48.7309, 2.2713, "91377"),
        summary="Réparation d'objets électriques", **{"pair:hasTopic": [THEMES + "repair"]}))
    await create("initiatives", samples.initiative(
        "epicerie_evry", name="Épicerie coopérative d'Évry", location=place(48.6295, 2.4405, "91228"),
        summary="Produits bio et locaux", **{"pair:hasTopic": [THEMES + "organic"]}))
    await create("initiatives", samples.initiative(
        "ressourcerie_lyon", name="Ressourcerie de Lyon", location=place(45.7640, 4.8357, "69381"),
        summary="Réemploi et réparations", **{"pair:hasTopic": [THEMES + "second_hand"]}))
    await create("initiatives", samples.initiative(
        "jardin_paris", name="Jardin partagé du 11e", location=place(48.8590, 2.3800, "75111"),
        summary="Un jardin partagé", **{"pair:hasTopic": [THEMES + "community_gardens"]}))
    owner = "initiatives/repair_massy"
    await create("events", samples.event("repair_decembre", owner=owner, name="Repair Café de décembre",
                                         location=at(48.7309, 2.2713, "91377")))
    await create("events", samples.event(
        "marche_bio", owner="initiatives/epicerie_evry", name="Marché bio de janvier",
        startTime="2026-01-10T09:00:00+01:00", endTime="2026-01-12T13:00:00+01:00",
        location=at(48.6295, 2.4405, "91228"), **{"pair:hasTopic": [THEMES + "organic"]}))
    await create("needs", samples.proposal("needs", "soudeurs", owner=owner, name="Bénévoles soudeurs",
                                           endTime="2030-01-01T00:00:00Z"))
    await create("needs", samples.proposal("needs", "perime", owner=owner, name="Besoin périmé",
                                           endTime="2026-01-01T00:00:00Z"))
    await create("offers", samples.proposal("offers", "outils", owner=owner, name="Prêt d'outils",
                                            category="volunteers", endTime="2030-01-01T00:00:00Z"))  # fmt: skip
    await _remote(node)
    yield node


async def get(node: RunningNode, path: str, status: int = 200, **params: Any) -> Any:
    async with node.http.get(f"{node.base}{path}", params=params, headers={"Accept": "application/json"}) as r:
        body = await r.json(content_type=None)
        assert r.status == status, body
        return body


async def names(node: RunningNode, **params: Any) -> list[str]:
    return sorted(item["name"] for item in (await get(node, "/search", **params))["items"])


async def problem(node: RunningNode, parameter: str, path: str = "/search", **params: Any) -> str:
    async with node.http.get(f"{node.base}{path}", params=params) as r:
        body = await r.json(content_type=None)
        assert r.status == 400, body
        assert r.content_type == "application/problem+json"
        assert body["detail"].startswith(f"{parameter}: "), body
        return str(body["detail"])


async def test_filters_combine(world: RunningNode) -> None:
    n = world
    essonne = ["Atelier vélo de Palaiseau", "Repair Café de Massy", "Épicerie coopérative d'Évry"]
    assert await names(n, kind="initiative", departement="91") == essonne
    assert await names(n, kind="initiative", region="11") == sorted([*essonne, "Jardin partagé du 11e"])
    assert await names(n, kind="initiative", commune="69381") == ["Ressourcerie de Lyon"]
    assert await names(n, kind="initiative,event", commune="91228") == ["Marché bio de janvier",
                                                                        "Épicerie coopérative d'Évry"]
    # a theme includes its narrower ones; notation or IRI
    assert await names(n, theme="reuse", kind="initiative") == ["Repair Café de Massy", "Ressourcerie de Lyon"]
    food = ["AMAP de Marseille", "Jardin partagé du 11e", "Épicerie coopérative d'Évry"]  # organic, gardens ⊂ food
    assert await names(n, theme=THEMES + "food", kind="initiative") == food
    assert await names(n, theme="food", kind="initiative", region="11") == food[1:]
    assert await names(n, theme="food", kind="initiative", departement="91") == food[2:]
    assert await names(n, bbox="2.0,48.3,2.6,48.8", kind="initiative") == essonne
    # text: accents and case do not matter, the last word is a prefix
    assert await names(n, q="EPICERIE coop") == ["Épicerie coopérative d'Évry"]
    assert await names(n, q="réparation", departement="91", kind="initiative") == [
        "Atelier vélo de Palaiseau", "Repair Café de Massy"]  # "Réparations": the last word is a prefix
    assert await names(n, q="velo", origin=REMOTE) == ["Atelier vélo de Palaiseau", "Fête du vélo"]


async def test_french_stemming_on_postgresql(world: RunningNode) -> None:
    found = await names(world, q="réparations", kind="initiative")
    if world.config.effective_database_url.startswith("postgresql"):
        # 'french' stems réparation(s) alike: the singular summary is found by the plural
        assert "Repair Café de Massy" in found and "Ressourcerie de Lyon" in found
    else:
        assert found == ["Atelier vélo de Palaiseau", "Ressourcerie de Lyon"]  # no stemmer in FTS5


async def test_radius_around_point_and_commune_with_distance_sort(world: RunningNode) -> None:
    body = await get(world, "/search", near="48.7309,2.2713", radius_km="5", kind="initiative")
    assert [i["name"] for i in body["items"]] == ["Repair Café de Massy", "Atelier vélo de Palaiseau"]
    first, second = body["items"]
    assert first["distance_km"] < 0.01 and 2.0 < second["distance_km"] < 3.0
    assert await names(world, near="91377", radius_km="30", kind="initiative") == sorted([
        "Repair Café de Massy", "Atelier vélo de Palaiseau", "Épicerie coopérative d'Évry",
        "Jardin partagé du 11e"])  # fmt: skip
    by_commune = await get(world, "/search", commune="91377", radius_km="20", kind="initiative")
    # from Massy's centroid: 0.5, 2.6, 16.3 and 16.5 km
    assert [i["name"] for i in by_commune["items"]] == ["Repair Café de Massy", "Atelier vélo de Palaiseau",
                                                        "Épicerie coopérative d'Évry", "Jardin partagé du 11e"]
    assert await names(world, commune="91377", radius_km="16.4", kind="initiative") == [
        "Atelier vélo de Palaiseau", "Repair Café de Massy", "Épicerie coopérative d'Évry"]
    distances = [i["distance_km"] for i in by_commune["items"]]
    assert distances == sorted(distances) and 15 < distances[-1] <= 20
    assert await names(world, near="45.76,4.83", radius_km="200", kind="initiative") == ["Ressourcerie de Lyon"]


async def test_open_needs_and_event_overlap(world: RunningNode) -> None:
    assert await names(world, kind="need") == ["Bénévoles soudeurs"], "expired needs are hidden by default"
    assert await names(world, kind="need", open="false") == ["Besoin périmé", "Bénévoles soudeurs"]
    assert await names(world, kind="offer") == ["Prêt d'outils"]
    # the market runs 10-12 January: a window starting on the 11th still overlaps it
    assert await names(world, **{"from": "2026-01-11", "to": "2026-01-12"}) == ["Marché bio de janvier"]
    assert await names(world, **{"from": "2025-12-01", "to": "2026-01-01"}) == ["Repair Café de décembre"]
    assert await names(world, **{"from": "2026-01-13"}) == ["Fête du vélo"]
    assert await names(world, **{"to": "2025-12-13T13:00:00Z"}) == []
    events = await get(world, "/search", kind="event")
    assert [i["name"] for i in events["items"]] == ["Repair Café de décembre", "Marché bio de janvier",
                                                    "Fête du vélo"], "events by start"  # fmt: skip
    assert events["items"][0]["start"] == "2025-12-13T13:00:00Z"


async def test_origin_and_record_iris(world: RunningNode) -> None:
    local = await names(world, origin="local", kind="initiative")
    remote = await names(world, origin=REMOTE_GRAPH, kind="initiative")
    assert remote == ["AMAP de Marseille", "Atelier vélo de Palaiseau"]
    assert await names(world, origin="127.0.0.9:8000", kind="initiative") == remote
    assert await names(world, origin="all", kind="initiative") == sorted(local + remote)
    assert "AMAP de Marseille" not in local and len(local) == 4
    items = (await get(world, "/search", q="amap"))["items"]
    assert items[0]["id"] == f"{REMOTE}/initiatives/amap_marseille" and items[0]["origin"] == REMOTE_GRAPH
    assert items[0]["type"] == "Organization" and items[0]["themes"] == [THEMES + "organic"]
    mine = (await get(world, "/search", q="jardin"))["items"][0]
    assert mine["id"] == f"{world.base}/initiatives/jardin_paris" == mine["url"]
    assert mine["origin"] == world.config.graph_iri and mine["place"].endswith("(75111)")


async def test_facets_count_the_current_filter(world: RunningNode) -> None:
    facets = (await get(world, "/search", departement="91", kind="initiative"))["facets"]
    # kind counts ignore the kind filter: what choosing another kind would give in Essonne
    assert facets["kind"] == {"initiative": 3, "event": 3}  # the needs and offers here have no place
    assert facets["theme"][THEMES + "repair"] == 1 and facets["theme"][THEMES + "cycling"] == 1
    themed = (await get(world, "/search", departement="91", kind="initiative", theme="repair"))["facets"]
    assert themed["kind"]["initiative"] == 1 and themed["kind"]["event"] == 1
    assert themed["theme"][THEMES + "organic"] == 1, "theme counts ignore the theme filter"


async def test_cursor_paging_is_stable_and_complete(world: RunningNode) -> None:
    for params in ({"sort": "newest"}, {"near": "48.7309,2.2713", "radius_km": "200"}, {"kind": "event"}):
        seen: list[str] = []
        body = await get(world, "/search", limit="2", **params)
        added = False
        while True:
            seen += [i["id"] for i in body["items"]]
            if not added:  # a record added between two pages neither repeats nor hides another
                await world.create("initiatives", samples.initiative(
                    f"nouveau_{len(seen)}_{'_'.join(params)}", name="Nouveau", location=place(48.73, 2.27, "91377")))
                added = True
            if not body["next"]:
                break
            assert parse_qs(urlsplit(body["next"]).query)["limit"] == ["2"]
            async with world.http.get(body["next"], headers={"Accept": "application/json"}) as r:
                body = await r.json()
        assert len(seen) == len(set(seen)), params
        everything = await get(world, "/search", limit="100", **params)
        before = {i["id"] for i in everything["items"]} - {i for i in seen}
        assert all("nouveau" in iri for iri in before), (params, before)


async def test_feeds(world: RunningNode) -> None:
    async with world.http.get(f"{world.base}/search.ics", params={"theme": "food", "departement": "91",
                                                                  "from": "2026-01-01"}) as r:
        assert r.status == 200 and r.content_type == "text/calendar" and "max-age" in r.headers["Cache-Control"]
        calendar = icalendar.Calendar.from_ical(await r.read())
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{world.base}/events/marche_bio"
    assert event.decoded("DTSTART") == datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
    async with world.http.get(f"{world.base}/search.atom", params={"kind": "initiative", "region": "11"}) as r:
        assert r.status == 200 and r.content_type == "application/atom+xml"
        parsed = feedparser.parse(await r.read())
    assert not parsed.bozo and len(parsed.entries) == 4
    assert f"{world.base}/initiatives/repair_massy" in {e.id for e in parsed.entries}
    async with world.http.get(f"{world.base}/search.geojson", params={"q": "velo"}) as r:
        assert r.status == 200 and r.content_type == "application/geo+json"
        collection = json.loads(await r.read())
    assert collection["type"] == "FeatureCollection"
    assert {f["geometry"]["coordinates"][0] for f in collection["features"]} == {2.2457}
    async with world.http.get(f"{world.base}/search.csv", params={"kind": "need", "open": "false"}) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO((await r.read()).decode())))
    assert sorted(row["name"] for row in rows) == ["Besoin périmé", "Bénévoles soudeurs"]
    await problem(world, "kind", "/search.ics", kind="initiative")


async def test_html_page(world: RunningNode) -> None:
    async with world.http.get(f"{world.base}/search", params={"q": "repair"}, headers={"Accept": "text/html"}) as r:
        assert r.status == 200 and r.content_type == "text/html"
        html = await r.text()
    assert "Repair Café de Massy" in html and 'name="q"' in html and "/search.ics?q=repair" in html
    assert "Initiative (" in html and "Événement" in html


@pytest.mark.parametrize(("parameter", "params"), [
    ("kind", {"kind": "person"}),
    ("theme", {"theme": "astrology"}),
    ("theme", {"theme": samples.NEEDS + "volunteers"}),
    ("commune", {"commune": "9137"}),
    ("departement", {"departement": "99"}),
    ("region", {"region": "12"}),
    ("bbox", {"bbox": "2.6,48.3,2.0,48.8"}),
    ("bbox", {"bbox": "2,48,3"}),
    ("bbox", {"bbox": "2,95,3,96"}),
    ("near", {"near": "48.7,abc"}),
    ("near", {"near": "99999"}),
    ("radius_km", {"radius_km": "5"}),
    ("radius_km", {"near": "91377", "radius_km": "500"}),
    ("radius_km", {"commune": "91377,91228", "radius_km": "5"}),
    ("from", {"from": "2026-13-01"}),
    ("to", {"to": "2026-01-01T10:00:00"}),
    ("to", {"from": "2026-02-01", "to": "2026-01-01"}),
    ("origin", {"origin": "https://nowhere.example"}),
    ("sort", {"sort": "distance"}),
    ("sort", {"sort": "relevance"}),
    ("sort", {"sort": "alphabetical"}),
    ("limit", {"limit": "1000"}),
    ("open", {"open": "maybe"}),
    ("cursor", {"cursor": "bm9uc2Vuc2U"}),
    ("colour", {"colour": "red"}),
])  # fmt: skip
async def test_bad_parameters(node: RunningNode, parameter: str, params: dict[str, str]) -> None:
    await problem(node, parameter, **params)


async def test_tampered_or_foreign_cursor(world: RunningNode) -> None:
    body = await get(world, "/search", kind="initiative", limit="1")
    cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    assert "another query" in await problem(world, "cursor", kind="event", limit="1", cursor=cursor)
    assert await problem(world, "cursor", kind="initiative", limit="1", cursor=cursor[:-3] + "xyz")


async def test_origin_of_a_really_followed_node(tmp_path: Path) -> None:
    try:
        a = await start_node(tmp_path / "a", "", host="127.0.0.2", **ENV)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    b = await start_node(tmp_path / "b", "", host="127.0.0.3", **ENV)
    try:
        await a.create("initiatives", samples.initiative("chez_a", name="Atelier de A"))
        await b.create("initiatives", samples.initiative("chez_b", name="Atelier de B"))
        await api(a, "POST", "/api/follows", {"target": b.base})
        await eventually(lambda: _holds(a, b), 20, what="A copies B")
        assert await names(a, q="atelier") == ["Atelier de A", "Atelier de B"]
        assert await names(a, q="atelier", origin=b.base) == ["Atelier de B"]
        assert await names(a, q="atelier", origin="local") == ["Atelier de A"]
        (item,) = (await get(a, "/search", q="atelier", origin=b.base))["items"]
        assert item["id"] == f"{b.base}/initiatives/chez_b" and item["origin"] == b.config.graph_iri
    finally:
        await stop_node(a)
        await stop_node(b)


async def _holds(a: RunningNode, b: RunningNode) -> bool:
    return len(await held(a, b)) == 1
