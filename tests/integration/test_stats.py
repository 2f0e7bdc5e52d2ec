"""Statistics over two real nodes: A (127.0.0.2, the database under test) follows B (127.0.0.3);
counts, creations per month and the partnership graph mix A's records and B's copy."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import RunningNode
from tests.integration.test_matching import EVRY, LYON, MASSY, PALAISEAU, follow, get, pair, place, proposal
from vocab import schemes

__all__ = ["pair"]
THEMES = samples.THEMES
GRAPHML = "{http://graphml.graphdrawing.org/xmlns}"


async def _seed(a: RunningNode, b: RunningNode) -> dict[str, str]:
    epicerie, asso = f"{a.base}/initiatives/epicerie_a", f"{a.base}/initiatives/asso_evry"
    atelier, lyon = f"{b.base}/initiatives/atelier_b", f"{b.base}/initiatives/lyon_b"

    def org(slug: str, where: tuple[float, float, str], themes: list[str], published: str,
            **extra: Any) -> dict[str, Any]:  # fmt: skip
        return samples.initiative(slug, name=slug.replace("_", " ").title(), location=place(where),
                                  published=published, **{"pair:hasTopic": [THEMES + t for t in themes]},
                                  **extra)  # fmt: skip

    await b.create("initiatives", org("atelier_b", PALAISEAU, ["repair"], "2024-03-10T10:00:00Z",
                                      **{"pair:partnerOf": [epicerie]}))  # fmt: skip
    await b.create("initiatives", org("lyon_b", LYON, ["food"], "2025-01-05T10:00:00Z"))
    await b.create("events", samples.event("fete_b", owner="initiatives/atelier_b", organizers=[atelier, epicerie]))
    await proposal(b, "needs", "besoin_b", "atelier_b", "volunteers", PALAISEAU, **{"pair:hasTopic": [THEMES + "food"]})
    await follow(a, b, 4)
    await a.create("initiatives", org("epicerie_a", MASSY, ["food", "organic"], "2024-03-01T10:00:00Z"))
    await a.create("initiatives", org("asso_evry", EVRY, ["repair"], "2024-05-01T10:00:00Z",
                                      **{"pair:partnerOf": [epicerie]}))  # fmt: skip
    await a.create("events", samples.event("fete_a", owner="initiatives/asso_evry", organizers=[asso, epicerie]))
    await proposal(a, "needs", "besoin_a", "epicerie_a", "volunteers", MASSY)
    await proposal(a, "needs", "besoin_supprime", "epicerie_a", "volunteers", MASSY)
    async with a.http.delete(f"{a.base}/api/needs/besoin_supprime", headers=a.auth) as r:
        assert r.status == 200
    return {"epicerie": epicerie, "asso": asso, "atelier": atelier, "lyon": lyon}


def cells(body: dict[str, Any], *keys: str) -> dict[tuple[Any, ...], int]:
    return {tuple(row[k] for k in keys): row["count"] for row in body["rows"]}


async def csv_rows(node: RunningNode, path: str, **headers: str) -> tuple[list[str], list[dict[str, str]]]:
    async with node.http.get(f"{node.base}{path}", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/csv" and response.charset == "utf-8"
        reader = csv.DictReader(io.StringIO((await response.read()).decode("utf-8")))
        return list(reader.fieldnames or []), list(reader)


async def test_counts_and_creations(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    await _seed(a, b)
    kinds = await get(a, "/stats/counts")
    assert kinds["dimensions"] == ["kind"] and kinds["columns"] == ["kind", "kind_label", "count"]
    assert cells(kinds, "kind") == {("initiative",): 4, ("event",): 2, ("need",): 2}, "deleted records do not count"
    assert kinds["records"] == 8

    body = await get(a, "/stats/counts?by=theme,departement,kind")
    assert body["columns"] == ["theme", "theme_notation", "theme_label", "departement", "departement_name", "kind",
                               "kind_label", "count"]  # fmt: skip
    table = cells(body, "theme_notation", "departement", "kind")
    # The épicerie counts once under each of its two themes; the events carry the sample's theme.
    assert table[("food", "91", "initiative")] == 1 and table[("organic", "91", "initiative")] == 1
    assert table[("repair", "91", "initiative")] == 2 and table[("food", "69", "initiative")] == 1
    assert table[("food", "91", "need")] == 1 and table[("repair", "91", "need")] == 1
    row = next(r for r in body["rows"] if r["theme_notation"] == "food" and r["departement"] == "69")
    assert row["theme"] == THEMES + "food" and row["departement_name"] == "Rhône" and row["kind_label"] == "Initiative"
    assert row["theme_label"] == schemes.concepts()[THEMES + "food"].labels["fr"]
    counts = [r["count"] for r in body["rows"]]
    assert counts == sorted(counts, reverse=True)

    # Filters: origin (local, a followed node by its base URL, all), kind, département, région.
    local = cells(await get(a, "/stats/counts?by=origin,kind&origin=local"), "origin", "kind")
    assert local == {(a.config.graph_iri, "initiative"): 2, (a.config.graph_iri, "event"): 1,
                     (a.config.graph_iri, "need"): 1}  # fmt: skip
    followed = await get(a, f"/stats/counts?by=origin&origin={b.base}")
    assert cells(followed, "origin") == {(b.config.graph_iri,): 4} and followed["filters"]["origin"] == [
        b.config.graph_iri]  # fmt: skip
    assert cells(await get(a, "/stats/counts?by=origin&origin=all"), "origin") == {
        (a.config.graph_iri,): 4, (b.config.graph_iri,): 4}  # fmt: skip
    assert cells(await get(a, "/stats/counts?by=commune&kind=initiative&departement=91"), "commune") == {
        ("91377",): 1, ("91228",): 1, ("91477",): 1}  # fmt: skip
    regions = await get(a, "/stats/counts?by=region&kind=initiative")
    assert cells(regions, "region", "region_name") == {("11", "Île-de-France"): 3, ("84", "Auvergne-Rhône-Alpes"): 1}
    assert cells(await get(a, "/stats/counts?by=kind&region=84"), "kind") == {("initiative",): 1}
    communes = await get(a, "/stats/counts?by=commune&kind=initiative")
    assert {r["commune"]: r["commune_name"] for r in communes["rows"]}["91377"] == "Massy"

    # CSV by extension and by Accept, the same table, columns in the same order.
    header, rows = await csv_rows(a, "/stats/counts.csv?by=theme,departement,kind")
    assert header == body["columns"]
    assert [{k: r[k] for k in ("theme", "departement", "kind", "count")} for r in rows] == [
        {"theme": x["theme"] or "", "departement": x["departement"] or "", "kind": x["kind"], "count": str(x["count"])}
        for x in body["rows"]]  # fmt: skip
    header2, rows2 = await csv_rows(a, "/stats/counts?by=theme,departement,kind", Accept="text/csv")
    assert (header2, rows2) == (header, rows)
    async with a.http.get(f"{a.base}/stats/counts.json") as response:
        assert response.content_type == "application/json"

    # Created per month (UTC), by kind and by département, with a month window.
    created = await get(a, "/stats/created?by=kind")
    assert created["columns"] == ["month", "kind", "kind_label", "count"]
    per_month = cells(created, "month", "kind")
    assert per_month[("2024-03", "initiative")] == 2 and per_month[("2024-05", "initiative")] == 1
    assert per_month[("2025-01", "initiative")] == 1
    window = cells(await get(a, "/stats/created?by=kind,departement&from=2024-03&to=2024-12"), "month", "departement")
    assert window == {("2024-03", "91"): 2, ("2024-05", "91"): 1}
    header, rows = await csv_rows(a, "/stats/created.csv?by=kind&kind=initiative")
    assert header == ["month", "kind", "kind_label", "count"] and len(rows) == 3

    # Every unknown dimension, filter or parameter is a 400 that names it.
    for path, name in (("/stats/counts?by=colour", "by"), ("/stats/counts?kind=unicorn", "kind"),
                       ("/stats/counts?departement=999", "departement"), ("/stats/counts?region=99", "region"),
                       ("/stats/counts?origin=https://nowhere.example", "origin"), ("/stats/counts?q=x", "q"),
                       ("/stats/created?from=2024-13", "from"), ("/stats/created?from=2025-01&to=2024-01", "to"),
                       ("/stats/created?by=month", "by"), ("/stats/partnerships?kind=initiative", "kind")):  # fmt: skip
        problem = await get(a, path, 400)
        assert problem["detail"].startswith(f"{name}:"), (path, problem)
    await get(a, "/stats/counts", 406, Accept="image/png")


async def test_partnerships_graph(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    who = await _seed(a, b)
    epicerie, asso, atelier = who["epicerie"], who["asso"], who["atelier"]
    # Undirected: each edge goes from the smaller IRI to the larger.
    expected = {(*sorted((x, epicerie)), t) for x in (asso, atelier) for t in ("partnerOf", "coOrganized")}

    async def linked() -> dict[str, Any] | None:
        body: dict[str, Any] = await get(a, "/stats/partnerships")
        found = {(e["source"], e["target"], e["type"]) for e in body["edges"]}
        return body if found == expected else None

    body = await eventually(linked, 30, what="the RDF index holds both nodes' links")
    nodes = {n["id"]: n for n in body["nodes"]}
    assert set(nodes) == {epicerie, asso, atelier}
    assert nodes[atelier] == {"id": atelier, "label": "Atelier B", "kind": "initiative", "departement": "91",
                              "origin": b.config.graph_iri}  # fmt: skip
    assert all(e["weight"] == 1 for e in body["edges"])

    local = await get(a, "/stats/partnerships?origin=local")
    assert {(e["source"], e["target"], e["type"]) for e in local["edges"]} == {
        (asso, epicerie, "partnerOf"), (asso, epicerie, "coOrganized")}  # fmt: skip
    assert (await get(a, "/stats/partnerships?departement=69"))["edges"] == []

    async with a.http.get(f"{a.base}/stats/partnerships.graphml") as response:
        assert response.status == 200 and response.content_type == "application/graphml+xml"
        root = ET.fromstring(await response.read())
    graph = root.find(f"{GRAPHML}graph")
    assert graph is not None and graph.get("edgedefault") == "undirected"
    keys = {k.get("id"): k.get("for") for k in root.findall(f"{GRAPHML}key")}
    assert keys == {"label": "node", "kind": "node", "departement": "node", "origin": "node", "type": "edge",
                    "weight": "edge"}  # fmt: skip
    labels = {n.get("id"): n.findtext(f"{GRAPHML}data[@key='label']") for n in graph.findall(f"{GRAPHML}node")}
    assert labels == {epicerie: "Epicerie A", asso: "Asso Evry", atelier: "Atelier B"}
    edges = {(e.get("source"), e.get("target"), e.findtext(f"{GRAPHML}data[@key='type']"))
             for e in graph.findall(f"{GRAPHML}edge")}  # fmt: skip
    assert edges == expected

    header, rows = await csv_rows(a, "/stats/partnerships.csv")
    assert header == ["source", "source_label", "target", "target_label", "type", "weight"]
    assert {(r["source"], r["target"], r["type"]) for r in rows} == expected
    assert {frozenset((r["source_label"], r["target_label"])) for r in rows} == {
        frozenset(("Asso Evry", "Epicerie A")), frozenset(("Atelier B", "Epicerie A"))}  # fmt: skip
