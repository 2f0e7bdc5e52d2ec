"""The service description: where to send queries, what they may use, the dataset they see."""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox

from node.config import Config
from node.sparql.results import RDF_FORMATS

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS_NS = "http://www.w3.org/ns/formats/"


def endpoint_url(config: Config) -> str:
    return f"{config.base_url}/sparql"


def service_description(config: Config, graphs: Iterable[str], fmt: str) -> bytes:
    """sd:Service: where to send queries, what they may use, and the dataset they see."""
    endpoint = ox.NamedNode(endpoint_url(config))
    service = ox.NamedNode(f"{endpoint_url(config)}#service")
    dataset, default = ox.BlankNode("dataset"), ox.BlankNode("default")
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    triples: list[ox.Triple] = []

    def add(s: ox.NamedNode | ox.BlankNode, p: str, o: ox.NamedNode | ox.BlankNode | ox.Literal) -> None:
        triples.append(ox.Triple(s, rdf_type if p == "a" else ox.NamedNode(p), o))

    add(service, "a", ox.NamedNode(SD + "Service"))
    add(service, SD + "endpoint", endpoint)
    add(service, SD + "supportedLanguage", ox.NamedNode(SD + "SPARQL11Query"))
    add(service, SD + "feature", ox.NamedNode(SD + "UnionDefaultGraph"))
    for name in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                 "Turtle", "N-Triples", "N-Quads", "JSON-LD", "RDF_XML"):  # fmt: skip
        add(service, SD + "resultFormat", ox.NamedNode(FORMATS_NS + name))
    add(service, SD + "defaultDataset", dataset)
    add(dataset, "a", ox.NamedNode(SD + "Dataset"))
    add(dataset, "http://purl.org/dc/terms/source", ox.NamedNode(config.graph_iri))
    add(dataset, SD + "defaultGraph", default)
    add(default, "a", ox.NamedNode(SD + "Graph"))
    add(default, "http://purl.org/dc/terms/description",
        ox.Literal("The union of every named graph of this node", language="en"))  # fmt: skip
    for n, graph in enumerate(sorted(graphs)):
        node = ox.BlankNode(f"g{n}")
        add(dataset, SD + "namedGraph", node)
        add(node, "a", ox.NamedNode(SD + "NamedGraph"))
        add(node, SD + "name", ox.NamedNode(graph))
    prefixes = {"sd": SD, "formats": FORMATS_NS, "dcterms": "http://purl.org/dc/terms/"}
    return ox.serialize(triples, format=RDF_FORMATS[fmt], prefixes=prefixes if fmt == "turtle" else None) or b""
