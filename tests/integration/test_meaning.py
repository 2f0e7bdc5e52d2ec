"""What the node emits means what it intends: JSON-LD and Turtle agree, shapes conform.

The JSON-LD views are expanded by pyld with the node's context; the Turtle views come from
the node's own term table. Both are independent readings of one record, so they must agree.
The AS2 view says the same once schema.org's spelling is folded, as the node folds it when it
reads (it writes schema.org as Mastodon does, `http://schema.org#`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import rdflib
from rdflib.compare import graph_diff, isomorphic

from node.cli import _demo, _init
from node.config import load_config
from node.convert.parse import node_loader
from node.records import COLLECTIONS
from tests.conftest import free_port
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node
from tests.unit.test_as2_views import folded
from vocab import shapes
from vocab.jsonld import to_nquads


@pytest.fixture
async def demo_node(data_dir: Path, database_url: str) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = load_config(data_dir, base_url=f"http://127.0.0.1:{port}", database_url=database_url or None, env={})
    await _init(config)
    message = await _demo(config)  # as an operator would, before serving
    assert "records created" in message
    restarted = await start_node(data_dir, database_url, port=port)
    yield restarted
    await stop_node(restarted)


async def all_record_iris(node: RunningNode) -> list[str]:
    iris = []
    for collection in COLLECTIONS:
        url: str | None = f"{node.base}/{collection}?page=true&limit=100"
        while url:
            async with node.http.get(url, headers={"Accept": AS2}) as response:
                page = await response.json(content_type=None)
            iris += [item["id"] for item in page["orderedItems"]]
            url = page.get("next")
    return iris


async def test_json_ld_and_turtle_mean_the_same(demo_node: RunningNode) -> None:
    iris = await all_record_iris(demo_node)
    assert len(iris) > 50
    loader = node_loader(demo_node.config.context_url)
    mastodon_schema = 0
    for iri in iris:
        async with demo_node.http.get(iri, headers={"Accept": "text/turtle"}) as response:
            from_turtle = rdflib.Graph().parse(data=await response.text(), format="turtle")
        for accept in ("application/ld+json", AS2):
            async with demo_node.http.get(iri, headers={"Accept": accept}) as response:
                doc = await response.json(content_type=None)
            from_json_ld = rdflib.Graph().parse(data=to_nquads(doc, loader=loader), format="nquads")
            if accept == AS2:
                mastodon_schema += any(str(p).startswith("http://schema.org#") for p in from_json_ld.predicates())
                from_json_ld = folded(from_json_ld)
            if not isomorphic(from_json_ld, from_turtle):
                _, only_json, only_turtle = graph_diff(from_json_ld, from_turtle)
                pytest.fail(f"{iri} ({accept}): only in JSON-LD {sorted(only_json)[:5]}, "
                            f"only in Turtle {sorted(only_turtle)[:5]}")  # fmt: skip
            assert not any(isinstance(p, rdflib.BNode) for p in from_json_ld.predicates()), iri
    assert mastodon_schema > 20, "AS2 documents write schema.org as Mastodon does"


async def test_everything_published_conforms_to_the_shapes(demo_node: RunningNode) -> None:
    async with demo_node.http.get(f"{demo_node.base}/initiatives?page=true&limit=100", headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["orderedItems"]
    data = rdflib.Dataset()
    for iri in await all_record_iris(demo_node):
        async with demo_node.http.get(iri, headers={"Accept": "application/n-triples"}) as response:
            data.parse(data=await response.text(), format="nt")
    graph = rdflib.Graph()
    for triple in data.triples((None, None, None)):
        graph.add(triple)
    result = shapes.validate(graph)
    assert result.conforms, result.text[:3000]
    assert len(graph) > 1000


async def test_demo_has_every_kind_with_links(demo_node: RunningNode) -> None:
    counts = {}
    for collection in COLLECTIONS:
        async with demo_node.http.get(f"{demo_node.base}/{collection}", headers={"Accept": AS2}) as r:
            counts[collection] = (await r.json(content_type=None))["totalItems"]
    assert counts["initiatives"] >= 20 and counts["events"] >= 3
    assert counts["needs"] >= 5 and counts["offers"] >= 5
    async with demo_node.http.get(f"{demo_node.base}/needs?page=true&limit=1", headers={"Accept": AS2}) as r:
        need = (await r.json(content_type=None))["orderedItems"][0]
    async with demo_node.http.get(need["attributedTo"], headers={"Accept": AS2}) as r:
        owner = await r.json(content_type=None)
    assert need["id"] in owner["pair:needs"]
    assert json.dumps(owner).count("@graph") == 0
