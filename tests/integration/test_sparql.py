"""/sparql on a real node: protocol, formats, datasets, refusals, limits, description, page."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.cli import _demo, _init
from node.config import load_config
from node.provenance import meta_graph
from node.routes.sparql import EXAMPLES
from tests import samples
from tests.conftest import free_port
from tests.eventually import eventually
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_remote_store import oxigraph_server  # noqa: F401 - a fixture

RESULTS_JSON = "application/sparql-results+json"
AS = "https://www.w3.org/ns/activitystreams#"
SD = "http://www.w3.org/ns/sparql-service-description#"
NAMES = f"PREFIX as: <{AS}> SELECT ?s ?name WHERE {{ ?s as:name ?name }} ORDER BY ?name"


def cross_join(width: int, count: bool) -> str:
    """Rows made from nothing: VALUES joined with themselves (width^3 * 30 rows)."""
    values = " ".join(str(i) for i in range(width))
    body = " ".join(f"VALUES ?v{i} {{ {values} }}" for i in range(3)) + f" VALUES ?w {{ {values} }} FILTER(?w < 30)"
    return f"SELECT {'(COUNT(*) AS ?n)' if count else '*'} WHERE {{ {body} }}"


#: About 3e7 rows counted inside Oxigraph: seconds of evaluation that yields nothing until done.
HEAVY_COUNT = cross_join(100, count=True)
#: The same rows streamed: the endpoint reads them one by one.
HEAVY_STREAM = cross_join(100, count=False)


async def sparql(node: RunningNode, query: str, accept: str | None = None, **params: str) -> tuple[int, str, str]:
    headers = {"Accept": accept} if accept else {}
    async with node.http.get(f"{node.base}/sparql", params={"query": query, **params}, headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def rows(node: RunningNode, query: str, **params: str) -> list[dict[str, Any]]:
    status, media, text = await sparql(node, query, RESULTS_JSON, **params)
    assert status == 200, text
    bindings: list[dict[str, Any]] = json.loads(text)["results"]["bindings"]
    return bindings


async def with_records(node: RunningNode) -> dict[str, Any]:
    created = await node.create("initiatives", samples.initiative())
    event = await node.create("events", samples.event())

    async def indexed() -> bool:
        found = await sparql(node, f"ASK {{ <{created['id']}> ?p ?o . <{event['id']}> ?q ?v }}", RESULTS_JSON)
        return found[0] == 200 and json.loads(found[2])["boolean"] is True

    await eventually(indexed, what="records in the RDF index")
    return created


@contextlib.asynccontextmanager
async def limited(data_dir: Path, database_url: str, **env: str) -> AsyncIterator[RunningNode]:
    """A node with SPARQL limits set through their environment variables."""
    running = await start_node(data_dir, database_url, **env)
    try:
        yield running
    finally:
        await stop_node(running)


async def test_formats_and_negotiation(node: RunningNode) -> None:
    created = await with_records(node)
    select = f"PREFIX as: <{AS}> SELECT ?name WHERE {{ <{created['id']}> as:name ?name }}"
    status, media, text = await sparql(node, select)
    assert (status, media.split(";")[0]) == (200, RESULTS_JSON)
    assert json.loads(text)["results"]["bindings"] == [{"name": {"type": "literal", "value": "Repair Café de Massy"}}]
    status, media, text = await sparql(node, select, "application/sparql-results+xml")
    assert media.startswith("application/sparql-results+xml") and "<literal>Repair Café de Massy</literal>" in text
    status, media, text = await sparql(node, select, "text/csv")
    assert media.startswith("text/csv") and list(csv.reader(io.StringIO(text))) == [["name"], ["Repair Café de Massy"]]
    status, media, text = await sparql(node, select, None, format="tsv")
    assert media.startswith("text/tab-separated-values") and text.splitlines() == ["?name", '"Repair Café de Massy"']
    # Every results format parses back with pyoxigraph to the same solution.
    for fmt, qrf in (("json", ox.QueryResultsFormat.JSON), ("xml", ox.QueryResultsFormat.XML),
                     ("tsv", ox.QueryResultsFormat.TSV)):  # fmt: skip
        _, _, text = await sparql(node, select, None, format=fmt)
        parsed = ox.parse_query_results(text.encode(), format=qrf)
        assert isinstance(parsed, ox.QuerySolutions)
        assert [s["name"] for s in parsed] == [ox.Literal("Repair Café de Massy")]
    status, media, text = await sparql(node, "ASK { ?s ?p ?o }", "application/sparql-results+xml")
    assert status == 200 and "<boolean>true</boolean>" in text
    assert json.loads((await sparql(node, "ASK { <urn:x:nothing> ?p ?o }"))[2]) == {"head": {}, "boolean": False}
    construct = f"CONSTRUCT {{ <{created['id']}> ?p ?o }} WHERE {{ <{created['id']}> ?p ?o }}"
    graphs = {}
    for accept, rdf in (("text/turtle", ox.RdfFormat.TURTLE), ("application/n-triples", ox.RdfFormat.N_TRIPLES),
                        ("application/n-quads", ox.RdfFormat.N_QUADS), ("application/ld+json", ox.RdfFormat.JSON_LD),
                        ("application/rdf+xml", ox.RdfFormat.RDF_XML)):  # fmt: skip
        status, media, text = await sparql(node, construct, accept)
        assert (status, media.split(";")[0]) == (200, accept), text
        graphs[accept] = {(q.subject, q.predicate, q.object) for q in ox.parse(text.encode(), format=rdf)}
    assert len({frozenset(g) for g in graphs.values()}) == 1 and len(graphs["text/turtle"]) > 5
    status, media, _ = await sparql(node, f"DESCRIBE <{created['id']}>", None, format="nt")
    assert media.startswith("application/n-triples")
    # q-values decide; */* gets the default; nothing acceptable is a 406 problem.
    _, media, _ = await sparql(node, select, "text/csv;q=0.5, application/sparql-results+xml")
    assert media.startswith("application/sparql-results+xml")
    _, media, _ = await sparql(node, construct, "*/*")
    assert media.startswith("text/turtle")
    status, media, text = await sparql(node, select, "image/png")
    assert status == 406 and media.startswith("application/problem+json")
    status, _, text = await sparql(node, select, None, format="turtle")
    assert status == 406 and "json, " in json.loads(text)["detail"]


async def test_post_forms(node: RunningNode) -> None:
    await with_records(node)
    url = f"{node.base}/sparql"
    async with node.http.post(url, data={"query": NAMES}, headers={"Accept": RESULTS_JSON}) as r:
        assert r.status == 200 and len((await r.json(content_type=None))["results"]["bindings"]) >= 2
    async with node.http.post(url, data=NAMES.encode(), headers={"Content-Type": "application/sparql-query"}) as r:
        assert r.status == 200 and len((await r.json(content_type=None))["results"]["bindings"]) >= 2
    async with node.http.post(url, data=b"ASK {}", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415 and "application/sparql-query" in (await r.json(content_type=None))["detail"]
    bad = "ASK { ?s ?p \"é\" }".encode("latin-1")
    async with node.http.post(url, data=bad, headers={"Content-Type": "application/sparql-query"}) as r:
        assert r.status == 400 and "UTF-8" in (await r.json(content_type=None))["detail"]
    async with node.http.get(url, params=[("query", "ASK {}"), ("query", "ASK {}")]) as r:
        assert r.status == 400 and "exactly one" in (await r.json(content_type=None))["detail"]


async def test_syntax_error_gives_the_position(node: RunningNode) -> None:
    status, media, text = await sparql(node, "SELECT * WHERE {\n  ?s ?p ?o .\n  FILTER(?o = ) }")
    assert status == 400 and media.startswith("application/problem+json")
    problem = json.loads(text)
    assert problem["title"] == "Malformed query" and "3:" in problem["detail"], problem


async def test_union_default_graph_named_graphs_and_protocol_dataset(node: RunningNode) -> None:
    created = await with_records(node)
    own, meta = node.config.graph_iri, meta_graph(node.config.graph_iri)
    iri = created["id"]
    # No dataset given: the default graph is the union of all graphs, schemes and provenance included.
    assert await rows(node, f"SELECT * WHERE {{ <{iri}> a ?t }}")
    assert await rows(node, f"SELECT * WHERE {{ <{own}> <http://purl.org/dc/terms/license> ?l }}")
    assert await rows(node, "SELECT * WHERE { ?c a <http://www.w3.org/2004/02/skos/core#Concept> } LIMIT 1")
    # Each origin is a named graph; the same IRI as the record's.
    found = await rows(node, f"SELECT ?g WHERE {{ GRAPH ?g {{ <{iri}> a ?t }} }}")
    assert {b["g"]["value"] for b in found} == {own}
    assert (await rows(node, f"SELECT ?s WHERE {{ ?s <{AS}name> 'Repair Café de Massy' }}"))[0]["s"]["value"] == iri
    # The provenance graph describes this node's graph: attribution, licence.
    prov = await rows(node, f"SELECT ?who ?l WHERE {{ GRAPH <{meta}> {{ <{own}> <http://www.w3.org/ns/prov#"
                            f"wasAttributedTo> ?who ; <http://purl.org/dc/terms/license> ?l }} }}")  # fmt: skip
    assert prov and prov[0]["who"]["value"] == f"{node.base}/actor"
    # FROM a held graph restricts the default graph to it; the protocol's dataset overrides FROM.
    only_meta = f"SELECT * FROM <{meta}> WHERE {{ <{iri}> a ?t }}"
    assert await rows(node, only_meta) == []
    assert await rows(node, only_meta, **{"default-graph-uri": own})
    status, _, text = await sparql(node, f"SELECT * WHERE {{ <{iri}> a ?t }}", RESULTS_JSON,
                                   **{"named-graph-uri": own})  # fmt: skip
    assert json.loads(text)["results"]["bindings"] == []  # named graphs only: an empty default graph
    assert await rows(node, f"SELECT * WHERE {{ GRAPH ?g {{ <{iri}> a ?t }} }}", **{"named-graph-uri": own})


async def test_refusals(node: RunningNode) -> None:
    url = f"{node.base}/sparql"
    for data, media in (("update=CLEAR+ALL", "application/x-www-form-urlencoded"),
                        ("CLEAR ALL", "application/sparql-update")):  # fmt: skip
        async with node.http.post(url, data=data.encode(), headers={"Content-Type": media}) as r:
            assert r.status == 403 and "read-only" in (await r.json(content_type=None))["detail"]
    status, _, text = await sparql(node, "INSERT DATA { <urn:a> <urn:b> <urn:c> }")
    assert status == 403 and "INSERT" in json.loads(text)["detail"]
    assert await rows(node, "SELECT * WHERE { <urn:a> ?p ?o }") == []
    status, _, text = await sparql(node, "SELECT * FROM <http://example.org/elsewhere> WHERE { ?s ?p ?o }")
    assert status == 400 and "never fetches" in json.loads(text)["detail"]
    status, _, text = await sparql(node, "PREFIX ex: <http://example.org/>\nSELECT * FROM NAMED ex:g { ?s ?p ?o }")
    assert status == 400 and "<http://example.org/g>" in json.loads(text)["detail"]


async def test_service_is_refused_before_any_request(node: RunningNode) -> None:
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    target = f"http://127.0.0.1:{server.port}/sparql"
    try:
        # The check matters: Oxigraph itself does call the endpoint a SERVICE clause names.
        with pytest.raises(OSError):
            await asyncio.to_thread(lambda: list(ox.Store().query(f"SELECT * {{ SERVICE <{target}> {{ ?s ?p ?o }} }}")))
        assert hits, "pyoxigraph no longer calls SERVICE endpoints: this test no longer proves anything"
        hits.clear()
        variants = [
            f"SELECT * WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
            f"select * where {{ service silent <{target}> {{ ?s ?p ?o }} }}",
            f"SELECT * WHERE {{ ?s ?p ?o . SERVICE<{target}>{{ ?s ?p ?o }} }}",
            f"PREFIX x: <{target}#>\nSELECT * WHERE {{ <http://a/#not-a-comment> ?p ?o SERVICE x: {{ ?s ?p ?o }} }}",
            f"SELECT * WHERE {{ BIND(<{target}> AS ?e) SERVICE ?e {{ ?s ?p ?o }} }}",
            f"SELECT * WHERE {{ {{ SELECT * WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }} }}",
            f"ASK {{ FILTER('#' != '') SERVICE <{target}> {{ ?s ?p ?o }} }}",
        ]
        for query in variants:
            status, _, text = await sparql(node, query)
            assert status == 400 and "SERVICE" in json.loads(text)["detail"], query
        # Names that merely contain the word still run.
        assert await rows(node, "PREFIX schema: <http://schema.org/> SELECT * WHERE { ?s a schema:Service }") == []
        assert hits == []
    finally:
        await server.close()


async def test_timeout_while_streaming_and_while_evaluating(data_dir: Path, database_url: str) -> None:
    env = {"OSCARTES_SPARQL_TIMEOUT": "0.3", "OSCARTES_SPARQL_MAX_RESULTS": "1000000000"}
    async with limited(data_dir, database_url, **env) as node:
        for query in (HEAVY_STREAM, HEAVY_COUNT):
            status, media, text = await sparql(node, query)
            assert (status, media.split(";")[0]) == (503, "application/problem+json")
            problem = json.loads(text)
            assert problem["title"] == "Query took too long" and "0.3 s" in problem["detail"]


async def test_result_size_limit(data_dir: Path, database_url: str) -> None:
    async with limited(data_dir, database_url, OSCARTES_SPARQL_MAX_RESULTS="5") as node:
        created = await with_records(node)
        status, _, text = await sparql(node, "SELECT * WHERE { ?s ?p ?o }")
        problem = json.loads(text)
        assert status == 422 and "LIMIT" in problem["detail"] and "/dataset.nq" in problem["detail"]
        status, _, text = await sparql(node, "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
        assert status == 422 and "triples" in json.loads(text)["detail"]
        assert len(await rows(node, "SELECT * WHERE { ?s ?p ?o } LIMIT 5")) == 5
        assert await rows(node, f"SELECT * WHERE {{ <{created['id']}> a ?t }}")


async def test_loop_stays_responsive_during_a_heavy_query(data_dir: Path, database_url: str) -> None:
    async with limited(data_dir, database_url, OSCARTES_SPARQL_TIMEOUT="30") as node:
        heavy = asyncio.create_task(sparql(node, HEAVY_COUNT))
        await asyncio.sleep(0.2)  # let it reach Oxigraph
        async with node.http.get(f"{node.base}/healthz") as r:
            assert r.status == 200
        assert (await sparql(node, "ASK {}"))[0] == 200  # the second slot
        assert not heavy.done(), "the heavy query ended before the others were answered: make it heavier"
        status, _, text = await heavy
        assert status == 200 and json.loads(text)["results"]["bindings"][0]["n"]["value"] == str(100**3 * 30)


async def test_busy_slots_answer_503_with_retry_after(data_dir: Path, database_url: str) -> None:
    """One slot, two heavy queries ahead: the third waits its whole time limit, then 503."""
    env = {"OSCARTES_SPARQL_TIMEOUT": "0.5", "OSCARTES_SPARQL_CONCURRENCY": "1"}
    async with limited(data_dir, database_url, **env) as node:
        first = asyncio.create_task(sparql(node, HEAVY_COUNT))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(sparql(node, HEAVY_COUNT))
        await asyncio.sleep(0.05)
        async with node.http.get(f"{node.base}/sparql", params={"query": "ASK {}"}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert (await r.json(content_type=None))["title"] == "SPARQL endpoint busy"
        assert [(await first)[0], (await second)[0]] == [503, 503]  # each stopped at its own deadline
        assert (await sparql(node, "ASK {}"))[0] == 200  # and the slot is free again


async def test_service_description_and_void(node: RunningNode) -> None:
    url = f"{node.base}/sparql"
    async with node.http.get(url, headers={"Accept": "text/turtle"}) as r:
        assert r.status == 200 and r.content_type == "text/turtle"
        graph = {(t.subject, t.predicate, t.object) for t in ox.parse(await r.read(), format=ox.RdfFormat.TURTLE)}
    service = next(s for s, p, o in graph if o == ox.NamedNode(SD + "Service"))
    assert (service, ox.NamedNode(SD + "endpoint"), ox.NamedNode(url)) in graph
    assert (service, ox.NamedNode(SD + "feature"), ox.NamedNode(SD + "UnionDefaultGraph")) in graph
    names = {o for s, p, o in graph if p == ox.NamedNode(SD + "name")}
    assert ox.NamedNode(node.config.graph_iri) in names and ox.NamedNode(meta_graph(node.config.graph_iri)) in names
    async with node.http.get(url, headers={"Accept": "application/ld+json"}) as r:
        assert r.status == 200 and SD + "Service" in await r.text()
    async with node.http.get(f"{node.base}/dataset", headers={"Accept": "application/ld+json"}) as r:
        void = await r.json(content_type=None)
    assert void["void:sparqlEndpoint"] == {"@id": url}
    assert void["dcat:accessService"]["dcat:endpointURL"] == {"@id": url}


async def test_examples_run_on_the_demo_territory(data_dir: Path, database_url: str) -> None:
    """Every example of the query page gives rows on `oscartes demo`, and the page shows them."""
    port = free_port()
    config = load_config(data_dir, base_url=f"http://127.0.0.1:{port}", database_url=database_url or None, env={})
    await _init(config)
    await _demo(config)
    node = await start_node(data_dir, database_url, port=port)
    try:
        labels = "SELECT * WHERE { GRAPH <https://w3id.org/oscartes/vocab> { ?c ?p ?o } } LIMIT 1"
        await eventually(lambda: rows(node, labels), what="the schemes graph indexed")
        provenance = f"SELECT * WHERE {{ GRAPH <{meta_graph(config.graph_iri)}> {{ ?s ?p ?o }} }} LIMIT 1"
        await eventually(lambda: rows(node, provenance), what="the provenance graph")
        for title, query in EXAMPLES:
            found = await rows(node, query)
            assert found, f"example {title!r} gives no row on the demo data"
            if "?label" in query:
                assert any("label" in b for b in found), f"example {title!r}: no French label"
        origin = await rows(node, EXAMPLES[-1][1])
        assert {b["graph"]["value"] for b in origin} == {config.graph_iri}
        assert origin[0]["source"]["value"] == f"{node.base}/actor"
        async with node.http.get(f"{node.base}/sparql", headers={"Accept": "text/html"}) as r:
            page = await r.text()
            assert r.status == 200 and "<textarea" in page and EXAMPLES[1][0].replace("'", "&#39;") in page
        async with node.http.get(f"{node.base}/sparql", params={"query": EXAMPLES[0][1], "format": "html"}) as r:
            page = await r.text()
            assert r.status == 200 and "<table>" in page and "/vocab/themes/" in page
    finally:
        await stop_node(node)


async def test_remote_store_answers_through_the_node(tmp_path: Path, oxigraph_server: str) -> None:  # noqa: F811
    """With a remote store the node checks the query, then forwards it with the same dataset."""
    node = await start_node(tmp_path / "node", "", OSCARTES_SPARQL_STORE=oxigraph_server)
    try:
        created = await with_records(node)
        own = node.config.graph_iri
        found = await rows(node, f"SELECT ?g WHERE {{ GRAPH ?g {{ <{created['id']}> a ?t }} }}")
        assert {b["g"]["value"] for b in found} == {own}
        assert await rows(node, f"SELECT * WHERE {{ <{created['id']}> a ?t }}", **{"default-graph-uri": own})
        iri = created["id"]
        construct = f"CONSTRUCT {{ <{iri}> ?p ?o }} WHERE {{ GRAPH <{own}> {{ <{iri}> ?p ?o }} }}"
        status, media, text = await sparql(node, construct, "text/turtle")
        assert status == 200 and media.startswith("text/turtle") and created["id"] in text
        assert (await sparql(node, "SELECT * WHERE { SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } }"))[0] == 400
        assert (await sparql(node, "SELECT * FROM <http://example.org/nowhere> { ?s ?p ?o }"))[0] == 400
        assert (await sparql(node, "CLEAR ALL"))[0] == 403
        assert (await sparql(node, "SELECT * WHERE {"))[0] == 400
    finally:
        await stop_node(node)
