"""The W3C SPARQL 1.1 Protocol tests (tests/fixtures/w3c-sparql11-protocol), run against a node.

The manifest is read with rdflib; each test's ht:Requests are sent as written (method,
path with `/sparql/` replaced by `/sparql`, headers, body in its character encoding) to
a real node whose store holds the data as the named graphs the ut:graphData labels give.

- query tests (`query_*`): the expected status class, result format and boolean;
- bad requests (`bad_*`, queries and updates alike): a 4xx;
- update tests (`update_*`): they expect the update to succeed, which a read-only service
  must not do. Each update request must be refused (403, problem+json) and each later
  check of its effect must find none: the ASK that would confirm it answers false.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
import pytest_asyncio
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from node.graph import EmbeddedIndex
from tests.integration.conftest import RunningNode, start_node, stop_node

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "w3c-sparql11-protocol"
MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")
HTS = "http://www.w3.org/2011/http-statusCodes#StatusCode"
RESULTS = {"application/sparql-results+json", "application/sparql-results+xml", "text/csv",
           "text/tab-separated-values"}  # fmt: skip
RDF_MEDIA = {"text/turtle": ox.RdfFormat.TURTLE, "application/n-triples": ox.RdfFormat.N_TRIPLES,
             "application/rdf+xml": ox.RdfFormat.RDF_XML, "application/ld+json": ox.RdfFormat.JSON_LD,
             "application/n-quads": ox.RdfFormat.N_QUADS}  # fmt: skip

@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    statuses: frozenset[int]  # status classes: 2, 3, 4
    format: str | None
    boolean: bool | None


@dataclass(frozen=True)
class ProtocolTest:
    name: str
    title: str
    graphs: dict[str, str]  # graph IRI -> data file
    requests: tuple[Request, ...]


def _list(graph: Graph, head: Node | None) -> list[Node]:
    return list(Collection(graph, head)) if head is not None else []


def _request(graph: Graph, node: Node) -> Request:
    headers = {str(graph.value(h, HT.fieldName)): str(graph.value(h, HT.fieldValue))
               for h in _list(graph, graph.value(node, HT.headers))}  # fmt: skip
    body = None
    if (content := graph.value(node, HT.body)) is not None:
        encoding = str(graph.value(content, CNT.characterEncoding) or "UTF-8")
        body = str(graph.value(content, CNT.chars)).encode(encoding)
    response = graph.value(node, HT.resp)
    statuses = frozenset(int(str(s).removeprefix(HTS)[0]) for s in graph.objects(response, MF.expectedStatus))
    fmt = graph.value(response, MF.expectedFormat)
    boolean = graph.value(response, MF.expectedBoolean)
    path = str(graph.value(node, HT.absolutePath))
    assert path.startswith("/sparql/"), path
    return Request(str(graph.value(node, HT.methodName)), "/sparql" + path.removeprefix("/sparql/"), headers, body,
                   statuses, str(fmt) if fmt is not None else None,
                   bool(boolean.toPython()) if isinstance(boolean, Literal) else None)  # fmt: skip


def manifest() -> list[ProtocolTest]:
    graph = Graph().parse(FIXTURES / "manifest.ttl", format="turtle", publicID=(FIXTURES / "manifest.ttl").as_uri())
    root = next(graph.subjects(RDF.type, MF.Manifest))
    tests = []
    for entry in _list(graph, graph.value(root, MF.entries)):
        data = {str(graph.value(g, RDFS.label)): Path(str(graph.value(g, UT.graph))).name
                for g in graph.objects(entry, UT.graphData)}  # fmt: skip
        action = graph.value(entry, MF.action)
        requests = tuple(_request(graph, r) for r in _list(graph, graph.value(action, HT.requests)))
        assert isinstance(entry, URIRef)
        tests.append(ProtocolTest(entry.split("#")[-1], str(graph.value(entry, MF.name)), data, requests))
    return tests


TESTS = manifest()
QUERY = [t for t in TESTS if t.name.startswith("query_")]
BAD = [t for t in TESTS if t.name.startswith("bad_")]
UPDATE = [t for t in TESTS if t.name.startswith("update_")]


def test_the_manifest_is_read_whole() -> None:
    assert len(TESTS) == 34 and len(QUERY) + len(BAD) + len(UPDATE) == 34
    assert all(t.requests for t in TESTS)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def protocol_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    data_dir = tmp_path_factory.mktemp("protocol") / "node"
    index = EmbeddedIndex(data_dir / "rdf")  # loaded before the node holds the store's lock
    graphs = {g: f for t in TESTS for g, f in t.graphs.items()}
    for graph, file in graphs.items():
        index.load(graph, (FIXTURES / file).read_text(encoding="utf-8"))
    index.close()
    node = await start_node(data_dir, "")
    yield node
    await stop_node(node)


async def _send(node: RunningNode, request: Request) -> tuple[int, str, bytes]:
    async with node.http.request(request.method, node.base + request.path, data=request.body,
                                 headers=request.headers, skip_auto_headers=["Content-Type"]) as r:  # fmt: skip
        return r.status, r.content_type, await r.read()


def _boolean(media: str, body: bytes) -> bool:
    parsed: Any
    if media == "application/sparql-results+json":
        parsed = json.loads(body)["boolean"]
        assert isinstance(parsed, bool)
        return parsed
    assert media == "application/sparql-results+xml", media
    result = ox.parse_query_results(body, format=ox.QueryResultsFormat.XML)
    assert isinstance(result, ox.QueryBoolean)
    return bool(result)


def _check_format(fmt: str, media: str, body: bytes) -> None:
    if fmt == "boolean":
        _boolean(media, body)
    elif fmt == "tabular":
        assert media in RESULTS, media
        if media == "application/sparql-results+json":
            assert "bindings" in json.loads(body)["results"]
    elif fmt == "RDF":
        assert media in RDF_MEDIA, media
        list(ox.parse(body, format=RDF_MEDIA[media]))
    else:
        raise AssertionError(f"unknown expected format {fmt!r}")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("test", QUERY, ids=[t.name for t in QUERY])
async def test_query(protocol_node: RunningNode, test: ProtocolTest) -> None:
    for request in test.requests:
        status, media, body = await _send(protocol_node, request)
        assert status // 100 in request.statuses, (test.title, status, body[:500])
        if request.format:
            _check_format(request.format, media, body)
        if request.boolean is not None:
            assert _boolean(media, body) is request.boolean, test.title


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("test", BAD, ids=[t.name for t in BAD])
async def test_bad_request(protocol_node: RunningNode, test: ProtocolTest) -> None:
    for request in test.requests:
        assert request.statuses == {4}
        status, media, body = await _send(protocol_node, request)
        assert status // 100 == 4, (test.title, status, body[:500])
        assert media == "application/problem+json" and json.loads(body)["detail"]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("test", UPDATE, ids=[t.name for t in UPDATE])
async def test_update_is_refused(protocol_node: RunningNode, test: ProtocolTest) -> None:
    for request in test.requests:
        status, media, body = await _send(protocol_node, request)
        is_update = request.headers.get("content-type", "").startswith("application/sparql-update") or (
            request.body is not None and request.body.startswith(b"update=")
        )
        if is_update:
            assert (status, media) == (403, "application/problem+json"), (test.title, status, body[:500])
            assert "read-only" in json.loads(body)["detail"]
        else:  # the check the test makes of the update's effect: there is none
            assert status == 200 and request.boolean is True, (test.title, status, body[:500])
            assert _boolean(media, body) is False
    # The graphs the other tests read are still there.
    status, media, body = await _send(protocol_node, Request(
        "GET", "/sparql?query=ASK%20%7B%20GRAPH%20%3Chttp%3A%2F%2Fkasei.us%2F2009%2F09%2Fsparql%2Fdata%2Fdata1.rdf%3E"
        "%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D%20%7D", {}, None, frozenset({2}), "boolean", True))  # fmt: skip
    assert _boolean(media, body) is True
