"""The dataset a node offers other nodes: VoID, the change stream and the dump; the host's
follow policy; the API's and CLI's refusals; and SHACL's two engines agreeing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib

from node.cli import main
from node.convert.common import now_utc
from node.ingest import Origin, kind_of, read_page
from tests import samples
from tests.integration.conftest import AS2, RunningNode
from vocab import shapes


async def get_json(node: RunningNode, url: str, status: int = 200, **headers: str) -> Any:
    async with node.http.get(url, headers=headers) as response:
        assert response.status == status, await response.text()
        return await response.json(content_type=None)


async def test_change_stream_pages_in_change_order_with_tombstones(node: RunningNode) -> None:
    for n in range(5):
        await node.create("initiatives", samples.initiative(f"ini_{n}", name=f"Initiative {n}"))
    async with node.http.delete(f"{node.base}/api/initiatives/ini_1", headers=node.auth) as r:
        assert r.status == 200
    collection = await get_json(node, f"{node.base}/dataset/changes")
    assert collection["type"] == "OrderedCollection"
    url, seen = collection["first"] + "&limit=2", []
    while url:
        page = await get_json(node, url)
        assert page["type"] == "OrderedCollectionPage" and page["partOf"] == f"{node.base}/dataset/changes"
        seen += [(i["id"].rsplit("/", 1)[-1], i["type"]) for i in page["orderedItems"]]
        url = page.get("next")
    # ini_1 changed last (its deletion): it comes last, as a Tombstone.
    assert seen[-1] == ("ini_1", "Tombstone")
    assert sorted(s for s, _ in seen) == [f"ini_{n}" for n in range(5)]


@pytest.mark.parametrize("query, detail", [("after=nonsense", "cursor"), ("since=yesterday", "RFC 3339"),
                                           ("since=2026-01-01T00:00:00", "offset"),
                                           ("since=2026-01-01T00:00:00Z&limit=x", "limit")])  # fmt: skip
async def test_change_stream_refuses_bad_parameters(node: RunningNode, query: str, detail: str) -> None:
    async with node.http.get(f"{node.base}/dataset/changes?{query}") as response:
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        assert detail in (await response.json())["detail"]


async def test_void_and_dump(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    void = await get_json(node, f"{node.base}/dataset", Accept="application/ld+json")
    assert void["@id"] == node.config.graph_iri and void["osc:changes"]["@id"].endswith("/dataset/changes")
    async with node.http.get(f"{node.base}/dataset", headers={"Accept": "text/turtle"}) as r:
        graph = rdflib.Graph().parse(data=await r.text(), format="turtle")
    assert (rdflib.URIRef(node.config.graph_iri), rdflib.URIRef("http://purl.org/dc/terms/license"), None) in graph
    async with node.http.get(f"{node.base}/dataset.nq") as r:
        assert r.headers["Content-Type"].startswith("application/n-quads") and "Last-Modified" in r.headers
        dump = await r.text()
    assert f"<{node.base}/initiatives/repair_cafe_massy>" in dump and f"<{node.config.graph_iri}> ." in dump
    actor = await get_json(node, f"{node.base}/actor", Accept=AS2)
    assert actor["osc:dataset"] == node.config.graph_iri


async def test_follow_api_refusals(node: RunningNode) -> None:
    editor = await node.token("editor", [])
    async with node.http.post(f"{node.base}/api/follows", json={"target": "http://x.example/"},
                              headers={"Authorization": f"Bearer {editor}"}) as r:  # fmt: skip
        assert r.status == 403
    # A private address is refused before any request leaves (the node runs on loopback here).
    for body, status in (({}, 400), ({"target": "ftp://x"}, 400), ({"target": node.base}, 403)):
        async with node.http.post(f"{node.base}/api/follows", json=body, headers=node.auth) as r:
            assert r.status == status, (body, await r.text())
    async with node.http.patch(f"{node.base}/api/origins", json={"origin": "http://nowhere.example",
                               "policy": "trusted"}, headers=node.auth) as r:  # fmt: skip
        assert r.status == 404
    async with node.http.patch(f"{node.base}/api/origins", json={"origin": "x", "policy": "maybe"},
                               headers=node.auth) as r:  # fmt: skip
        assert r.status == 400


def test_cli_contract_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "n")
    assert main(["init", "--data", data, "--base-url", "http://127.0.0.1:9"]) == 0
    assert main(["unfollow", "--data", data, "http://other.example"]) == 1
    assert "does not follow" in capsys.readouterr().err
    assert main(["origins", "--data", data]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["followers", "--data", data]) == 0
    assert json.loads(capsys.readouterr().out) == {"accepted": [], "pending": []}
    assert main(["origins", "--data", data, "http://other.example"]) == 1
    assert "--policy" in capsys.readouterr().err


def test_record_iris_belong_to_their_origin() -> None:
    base = "https://b.example"
    assert kind_of(f"{base}/needs/x", base) == "need"
    assert kind_of(f"{base}/initiatives/x", base) == "initiative"
    for other in ("https://c.example/needs/x", f"{base}/needs/x/y", f"{base}/needs/x#frag", f"{base}/nope/x",
                  f"{base}/needs/"):  # fmt: skip
        assert kind_of(other, base) is None


def test_read_page_refuses_what_an_origin_may_not_say() -> None:
    origin = Origin("https://b.example/dataset", "https://b.example/actor", "https://b.example", "")
    context = ["https://www.w3.org/ns/activitystreams", "https://b.example/ns/context.jsonld"]
    good = {**samples.initiative("ok"), "id": "https://b.example/initiatives/ok"}
    elsewhere = {**samples.initiative("vol"), "id": "https://c.example/initiatives/vol"}
    bad_siret = {**samples.initiative("siret"), "id": "https://b.example/initiatives/siret",
                 "schema:identifier": [{"type": "PropertyValue", "propertyID": "SIRET", "value": "12"}]}  # fmt: skip
    from node.config import Config

    config = Config(data_dir=Path("/nonexistent"), base_url="https://a.example")
    incoming, refused = read_page([good, elsewhere, bad_siret], context, origin, config, now_utc())
    assert [i.iri for i in incoming] == [good["id"]]
    reasons = dict(refused)
    assert "not a record IRI under its origin" in reasons[elsewhere["id"]]
    assert "SIRET" in reasons[bad_siret["id"]]


def test_rudof_and_pyshacl_agree_on_the_shapes() -> None:
    """The fast engine (ingestion) and the reference one (oscartes validate) on the same data."""
    org, pv = "http://x.example/i", "http://x.example/i#id"
    rdf_type, pair, schema = (rdflib.RDF.type, "http://virtual-assembly.org/ontologies/pair#", "http://schema.org/")
    cases = {
        "conforms": [(org, rdf_type, pair + "Organization"), (org, "https://www.w3.org/ns/activitystreams#name", "A")],
        "no name": [(org, rdf_type, pair + "Organization")],
        "bad siret": [(org, rdf_type, pair + "Organization"), (org, "https://www.w3.org/ns/activitystreams#name", "A"),
                      (org, schema + "identifier", pv), (pv, rdf_type, schema + "PropertyValue"),
                      (pv, schema + "propertyID", "SIRET"), (pv, schema + "value", "12")],
        "topic as text": [(org, rdf_type, pair + "Organization"),
                          (org, "https://www.w3.org/ns/activitystreams#name", "A"), (org, pair + "hasTopic", "food")],
    }  # fmt: skip
    many = [(f"{org}{n}", p, o) for n in range(160) for _, p, o in cases["conforms"]]
    cases["a page (the engine's other path)"] = many + cases["bad siret"]
    assert len(cases["a page (the engine's other path)"]) > shapes.SMALL
    for name, triples in cases.items():
        graph = rdflib.Graph()
        for s, p, o in triples:
            obj = rdflib.URIRef(o) if str(o).startswith("http") else rdflib.Literal(o)
            graph.add((rdflib.URIRef(s), rdflib.URIRef(p), obj))
        reference = shapes.validate(graph)
        fast = shapes.violations(graph.serialize(format="nt"))
        assert reference.conforms == (not fast), name
        assert set(reference.focus_nodes) == set(fast), name
