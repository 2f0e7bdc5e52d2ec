"""SHACL validation of what a node holds, read through rdflib over Oxigraph (oxrdflib).

pyshacl speaks rdflib; oxrdflib lets it run on the Oxigraph store itself, so its SPARQL
runs in Oxigraph and nothing is copied into rdflib's memory store.
"""

from __future__ import annotations

import pyoxigraph as ox
import rdflib
from oxrdflib import OxigraphStore

from vocab import shapes


def graph_view(store: ox.Store, graph_iri: str) -> rdflib.Graph:
    dataset = rdflib.Dataset(store=OxigraphStore(store=store))
    return dataset.graph(rdflib.URIRef(graph_iri))


def validate_graph(store: ox.Store, graph_iri: str) -> shapes.ValidationResult:
    return shapes.validate(graph_view(store, graph_iri))


def store_from_ntriples(chunks: list[str], graph_iri: str) -> ox.Store:
    """An in-memory store of SQL's N-Triples, when the on-disk one is held by `serve`."""
    store = ox.Store()
    for chunk in chunks:
        store.load(chunk, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph_iri))
    return store
