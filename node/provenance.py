"""Provenance of the named graphs, as RDF in a graph of its own: for this node's graph and
each origin's, where it comes from, under which licence, when it was retrieved and changed.
Researchers join it to any query: GRAPH ?g { ... } GRAPH <meta> { ?g dcterms:license ?l }."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyoxigraph as ox

from node.convert.common import fmt_datetime

DCT = "http://purl.org/dc/terms/"
PROV = "http://www.w3.org/ns/prov#"
VOID = "http://rdfs.org/ns/void#"
OSC = "https://w3id.org/oscartes/ns#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD_DATETIME = ox.NamedNode("http://www.w3.org/2001/XMLSchema#dateTime")


def meta_graph(graph_iri: str) -> str:
    """The graph describing every named graph of a node whose own graph is `graph_iri`."""
    return f"{graph_iri}/provenance"


def _when(value: datetime) -> ox.Literal:
    return ox.Literal(fmt_datetime(value), datatype=XSD_DATETIME)


def describe(own_graph: str, own_actor: str, own_license: str, own_modified: datetime | None,
             origins: Sequence[Any]) -> str:  # fmt: skip
    """N-Triples of the provenance of this node's graph and of the origins' graphs it holds."""
    triples: list[ox.Triple] = []

    def add(s: str, p: str, o: ox.NamedNode | ox.Literal) -> None:
        triples.append(ox.Triple(ox.NamedNode(s), ox.NamedNode(p), o))

    entries = [(own_graph, own_actor, own_license, own_modified, None, "local", None)]
    entries += [(o.graph, o.actor, o.license, o.modified_at, o.retrieved_at, o.policy, o.via)
                for o in origins if o.policy != "blocked"]  # fmt: skip
    for graph, actor, license_iri, modified, retrieved, policy, via in entries:
        for kind in (VOID + "Dataset", PROV + "Entity"):
            add(graph, RDF_TYPE, ox.NamedNode(kind))
        add(graph, PROV + "wasAttributedTo", ox.NamedNode(actor))
        add(graph, DCT + "source", ox.NamedNode(graph))
        if license_iri:
            add(graph, DCT + "license", ox.NamedNode(license_iri))
        if modified:
            add(graph, DCT + "modified", _when(modified))
        if retrieved:
            add(graph, PROV + "generatedAtTime", _when(retrieved))
        add(graph, OSC + "policy", ox.Literal(policy))
        if via:
            add(graph, PROV + "wasDerivedFrom", ox.NamedNode(via))
    return (ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b"").decode()
