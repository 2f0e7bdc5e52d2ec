"""What RDF tools ask a node for: every RDF format of a record, a record's N-Quads as a
document, the dataset where VoID says to look, and the collections as RDF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.collection import Collection
from rdflib.compare import isomorphic

from node.convert.parse import node_loader
from tests import samples
from tests.integration.conftest import AS2, RunningNode
from tests.peers import npm
from vocab.jsonld import to_nquads

AS = "https://www.w3.org/ns/activitystreams#"
VOID = "http://rdfs.org/ns/void#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
COMUNICA = Path(__file__).resolve().parents[1] / "peers" / "comunica"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: media type -> (?format= name, rdflib parser)
RDF_MEDIA = {
    "text/turtle": ("ttl", "turtle"),
    "application/n-triples": ("nt", "nt"),
    "application/n-quads": ("nq", "nquads"),
    "application/trig": ("trig", "trig"),
    "application/rdf+xml": ("rdf", "xml"),
    "application/ld+json": ("jsonld", "json-ld"),
}


def parsed(body: bytes, parser: str, node: RunningNode) -> rdflib.Graph:
    """The default graph of what was served (N-Quads and TriG may also hold named graphs).
    JSON-LD is expanded with the node's contexts, from disk: the tests make no request outside."""
    if parser == "json-ld":
        nquads = to_nquads(json.loads(body), loader=node_loader(node.config.context_url))
        return rdflib.Graph().parse(data=nquads, format="nquads")
    if parser in ("nquads", "trig"):
        dataset = rdflib.Dataset()
        dataset.parse(data=body, format=parser)
        default: rdflib.Graph = dataset.default_graph
        return default
    return rdflib.Graph().parse(data=body, format=parser)


async def get(node: RunningNode, url: str, accept: str | None = None) -> tuple[int, Any, bytes]:
    headers = {"Accept": accept} if accept else {}
    async with node.http.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, response.headers, await response.read()


async def test_record_answers_rdf_xml_and_trig_like_the_other_formats(node: RunningNode) -> None:
    iri = (await node.create("initiatives", samples.initiative()))["id"]
    _, _, turtle = await get(node, iri, "text/turtle")
    reference = parsed(turtle, "turtle", node)
    for media in ("application/rdf+xml", "application/trig"):
        name, parser = RDF_MEDIA[media]
        status, headers, body = await get(node, iri, media)
        assert status == 200, (media, body[:300])
        assert headers["Content-Type"].startswith(media) and headers["Vary"] == "Accept"
        assert isomorphic(parsed(body, parser, node), reference), media
        status, by_name, body = await get(node, f"{iri}?format={name}", "text/html")
        assert status == 200 and by_name["Content-Type"].startswith(media)
        assert isomorphic(parsed(body, parser, node), reference), name
        async with node.http.get(iri, headers={"Accept": media, "If-None-Match": headers["ETag"]}) as r:
            assert r.status == 304 and r.headers["Vary"] == "Accept"
    links = headers["Link"]
    for media in ("text/html", AS2, *RDF_MEDIA):
        assert f'<{iri}>; rel="alternate"; type="{media}"' in links, media
    status, headers, _ = await get(node, iri, "image/png")
    assert status == 406 and headers["Vary"] == "Accept"


async def test_a_record_as_n_quads_or_trig_is_in_the_default_graph(node: RunningNode) -> None:
    iri = (await node.create("initiatives", samples.initiative()))["id"]
    for media, fmt in (("application/n-quads", ox.RdfFormat.N_QUADS), ("application/trig", ox.RdfFormat.TRIG)):
        _, headers, body = await get(node, iri, media)
        quads = list(ox.parse(body, format=fmt))
        assert quads and all(q.graph_name == ox.DefaultGraph() for q in quads), media
        assert any(q.subject.value == iri and q.predicate.value == AS + "name" for q in quads), media
    # The named-graph form, by origin, is the dump's (and the SPARQL endpoint's).
    _, _, dump = await get(node, f"{node.base}/dataset.nq")
    assert {q.graph_name.value for q in ox.parse(dump, format=ox.RdfFormat.N_QUADS)} == {node.config.graph_iri}


async def comunica(*queries: tuple[list[str], str]) -> list[Any]:
    """(documents, SELECT query) pairs run by Comunica over the documents it fetches."""
    results: list[Any] = await npm.run_json(COMUNICA, "document.mjs", json.dumps(queries))
    return results


async def test_comunica_reads_a_record_and_a_collection_as_documents(node: RunningNode) -> None:
    iri = (await node.create("initiatives", samples.initiative()))["id"]
    page = f"{node.base}/initiatives?page=true"
    names, items = await comunica(
        ([iri], f"PREFIX as: <{AS}> SELECT ?name WHERE {{ <{iri}> as:name ?name }}"),
        ([page], f"PREFIX as: <{AS}> SELECT ?item WHERE {{ <{page}> as:items/<{RDF}rest>*/<{RDF}first> ?item }}"),
    )
    assert [row["name"]["value"] for row in names] == ["Repair Café de Massy"]
    assert [row["item"]["value"] for row in items] == [iri]


async def test_the_dataset_is_at_well_known_void_and_at_home_for_rdf_clients(node: RunningNode) -> None:
    dataset = rdflib.URIRef(node.config.graph_iri)
    for url in (f"{node.base}/.well-known/void", f"{node.base}/"):
        for media, (_, parser) in RDF_MEDIA.items():
            status, headers, body = await get(node, url, media)
            assert status == 200, (url, media, body[:300])
            assert headers["Content-Type"].startswith(media) and headers["Vary"] == "Accept"
            graph = parsed(body, parser, node)
            assert (dataset, rdflib.RDF.type, rdflib.URIRef(VOID + "Dataset")) in graph, (url, media)
    status, headers, _ = await get(node, f"{node.base}/.well-known/void", "image/png")
    assert status == 406 and headers["Vary"] == "Accept"
    # Browsers, */* and clients without Accept (or asking for ActivityStreams) keep the page.
    for accept in (None, "*/*", BROWSER, "text/html", AS2, "image/png"):
        status, headers, body = await get(node, f"{node.base}/", accept)
        assert status == 200 and headers["Content-Type"].startswith("text/html"), accept
        assert headers["Vary"] == "Accept"
    _, headers, _ = await get(node, f"{node.base}/?format=ttl")
    assert headers["Content-Type"].startswith("text/turtle")


def listed(graph: rdflib.Graph, page: str) -> list[str]:
    head = graph.value(rdflib.URIRef(page), rdflib.URIRef(AS + "items"))
    return [str(item) for item in Collection(graph, head)] if head else []


async def test_collections_answer_rdf_with_their_items_and_paging_links(node: RunningNode) -> None:
    for n in range(3):
        doc = samples.initiative(f"init_{n}", name=f"Initiative {n}", published=f"2024-01-0{n + 1}T10:00:00Z")
        await node.create("initiatives", doc)
    collection = f"{node.base}/initiatives"
    status, headers, body = await get(node, collection, "text/turtle")
    assert status == 200 and headers["Content-Type"].startswith("text/turtle") and headers["Vary"] == "Accept"
    graph = parsed(body, "turtle", node)
    subject = rdflib.URIRef(collection)
    assert (subject, rdflib.RDF.type, rdflib.URIRef(AS + "OrderedCollection")) in graph
    assert str(graph.value(subject, rdflib.URIRef(AS + "totalItems"))) == "3"
    url: str | None = str(graph.value(subject, rdflib.URIRef(AS + "first"))) + "&limit=2"
    seen: list[str] = []
    while url:
        status, headers, body = await get(node, url, "text/turtle")
        assert status == 200, body[:300]
        graph = parsed(body, "turtle", node)
        page = next(iter(graph.subjects(rdflib.URIRef(AS + "partOf"), subject)))
        assert (page, rdflib.RDF.type, rdflib.URIRef(AS + "OrderedCollectionPage")) in graph
        items = listed(graph, str(page))
        # Each item comes with its triples, as the JSON page embeds each document.
        seen += [str(graph.value(rdflib.URIRef(i), rdflib.URIRef(AS + "name"))) for i in items]
        after = graph.value(page, rdflib.URIRef(AS + "next"))
        url = f"{after}&limit=2" if after else None
    assert seen == ["Initiative 2", "Initiative 1", "Initiative 0"]


async def test_a_collection_page_means_the_same_in_every_format(node: RunningNode) -> None:
    await node.create("initiatives", samples.initiative())
    await node.create("events", samples.event())
    # A page with an item, an empty one (its list is rdf:nil) and a collection.
    for url, size in ((f"{node.base}/events?page=true", 10), (f"{node.base}/needs?page=true", 3),
                      (f"{node.base}/events", 3)):  # fmt: skip
        _, _, body = await get(node, url, "application/ld+json")  # the linked-data view of the JSON
        from_json_ld = parsed(body, "json-ld", node)
        assert len(from_json_ld) >= size, url
        for media, (name, parser) in RDF_MEDIA.items():
            sep = "&" if "?" in url else "?"
            for query, accept in (("", media), (f"{sep}format={name}", None)):
                status, headers, body = await get(node, url + query, accept)
                assert status == 200 and headers["Content-Type"].startswith(media), (url, media, query)
                assert isomorphic(parsed(body, parser, node), from_json_ld), (url, media, query)
    for collection in ("initiatives", "needs", "offers", "resources", "places"):
        status, _, body = await get(node, f"{node.base}/{collection}", "application/rdf+xml")
        assert status == 200, (collection, body[:300])
        graph = parsed(body, "xml", node)
        assert (rdflib.URIRef(f"{node.base}/{collection}"), rdflib.RDF.type,
                rdflib.URIRef(AS + "OrderedCollection")) in graph  # fmt: skip
    status, headers, _ = await get(node, f"{node.base}/events", "image/png")
    assert status == 406 and headers["Vary"] == "Accept"


# rdflib 7 parsing N-Quads and TriG warns about its own deprecated internals.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib.*")
