"""The two views of a record: AS2 (one `type` string, schema.org as Mastodon writes it) and
linked data (every type, schema.org's own namespace). Both mean the record's triples once
schema.org's spelling is folded, and the node reads either back into the same record."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import rdflib
from rdflib.compare import isomorphic

from federation.terms import RDF_TYPE, fold_schema, normalise
from node.convert.as2 import linked_data_view, record_to_as2
from node.convert.parse import ParseContext, node_loader, record_from_jsonld, record_from_node
from node.convert.rdf import doc_to_triples, to_ntriples
from node.records import ActorView, Kind, Links, Record
from tests import samples
from vocab import fastld, jsonld

BASE = "https://node.example"
CTX = ParseContext(BASE, f"{BASE}/ns/context.jsonld", "https://creativecommons.org/licenses/by-sa/4.0/",
                   datetime(2026, 1, 5, tzinfo=UTC))  # fmt: skip
AS2_CONTEXT = "https://www.w3.org/ns/activitystreams"
ACTOR = ActorView("-----BEGIN PUBLIC KEY-----\nMII\n-----END PUBLIC KEY-----\n", f"{BASE}/inbox")
#: Mastodon's own context extension, as its actors carry it.
MASTODON_INLINE = {"schema": "http://schema.org#", "PropertyValue": "schema:PropertyValue", "value": "schema:value",
                   "propertyID": "schema:propertyID", "address": "schema:address",
                   "PostalAddress": "schema:PostalAddress", "streetAddress": "schema:streetAddress",
                   "postalCode": "schema:postalCode", "addressLocality": "schema:addressLocality",
                   "addressCountry": "schema:addressCountry"}  # fmt: skip
SAMPLES: dict[Kind, dict[str, Any]] = {
    "initiative": samples.initiative(**{"pair:phone": "+33 1 23 45 67 89"}),
    "event": samples.event(eventStatus="https://w3id.org/fep/8a8e/EventScheduled"),
    "need": samples.proposal(),
    "offer": samples.proposal("offers", "pret_outillage", category="equipment"),
    "resource": samples.resource(),
    "place": samples.place(),
}


def parsed(doc: dict[str, Any], kind: Kind) -> Record:
    return record_from_jsonld(copy.deepcopy(doc), kind, CTX).record


def as2(kind: Kind, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    record = parsed(doc or SAMPLES[kind], kind)
    links = Links(actor=ACTOR) if kind == "initiative" else Links()
    return record_to_as2(record, links, CTX.context_url, "deliverService")


def types(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [t for v in value for t in types(v)]
    if isinstance(value, dict):
        here = [value["type"]] if "type" in value else []
        return here + [t for k, v in value.items() if k != "@context" for t in types(v)]
    return []


def graph(doc: dict[str, Any]) -> rdflib.Graph:
    # Bare domain names, which the node does not state as triples (node/convert/rdf.py).
    doc = {k: v for k, v in doc.items() if k != "attributionDomains"}
    return rdflib.Graph().parse(data=jsonld.to_nquads(doc, loader=node_loader(CTX.context_url)), format="nquads")


def folded(g: rdflib.Graph) -> rdflib.Graph:
    """schema.org's spellings folded in predicates and types, as federation/terms.py reads them."""
    out = rdflib.Graph()
    for s, p, o in g:
        p = rdflib.URIRef(fold_schema(str(p)))
        out.add((s, p, rdflib.URIRef(fold_schema(str(o))) if p == rdflib.RDF.type else o))
    return out


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_as2_has_one_type_string_and_linked_data_has_them_all(kind: Kind) -> None:
    doc = as2(kind)
    assert all(isinstance(t, str) for t in types(doc)), types(doc)
    view = linked_data_view(doc)
    assert "rdf:type" not in str(view) and "http://schema.org#" not in str(view)
    first = parsed(SAMPLES[kind], kind)
    expected = {"initiative": ["Organization", "pair:Organization", "essglobal:SSEInitiative"],
                "event": ["Event", "pair:Event"], "need": ["Note", "Proposal"], "offer": ["Note", "Proposal"],
                "resource": ["Document", "pair:Document"], "place": ["Place", "pair:Place"]}[first.kind]  # fmt: skip
    assert (doc["type"], doc["rdf:type"]) == (expected[0], expected[1:])
    assert view["type"] == expected


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_both_views_mean_the_stored_triples(kind: Kind) -> None:
    doc = as2(kind)
    stored = rdflib.Graph().parse(data=to_ntriples(doc_to_triples(doc)), format="nt")
    assert isomorphic(graph(linked_data_view(doc)), stored)
    as_served = graph(doc)
    assert isomorphic(folded(as_served), stored)
    if kind in ("initiative", "event", "place"):  # they use schema.org terms
        assert any(str(t).startswith("http://schema.org#") for t in (*as_served.predicates(), *as_served.objects()))


def test_profile_fields_are_mastodon_property_values() -> None:
    doc = as2("initiative")
    assert doc["@context"][-1]["schema"] == "http://schema.org#"
    g = graph(doc)
    fields = {str(f) for f in g.subjects(rdflib.RDF.type, rdflib.URIRef("http://schema.org#PropertyValue"))}
    names = {str(f["name"]) for f in doc["attachment"]}
    assert {"Adresse", "Site web", "Téléphone", "Forme juridique", "SIREN"} == names
    assert {f"{doc['id']}#field-{k}" for k in ("address", "website", "phone")} <= fields
    value = g.value(rdflib.URIRef(f"{doc['id']}#field-phone"), rdflib.URIRef("http://schema.org#value"))
    assert str(value) == "+33 1 23 45 67 89"


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_either_view_reads_back_as_the_same_record(kind: Kind) -> None:
    doc = as2(kind)
    record = replace(parsed(SAMPLES[kind], kind), email="")  # a private email is not published
    assert parsed(doc, kind) == record
    assert parsed(linked_data_view(doc), kind) == record
    # Another node reads pages of AS2 documents through Oxigraph's parser.
    page = {k: v for k, v in doc.items() if k != "@context"}
    nodes = fastld.expand_page([page], doc["@context"], [doc["id"]], loader=node_loader(CTX.context_url),
                               base=BASE + "/")  # fmt: skip
    assert record_from_node(nodes[doc["id"]], kind, CTX).record == record


def test_a_project_stays_a_project() -> None:
    project = samples.initiative("atelier_velo", type=["Organization", "pair:Project"])
    doc = as2("initiative", project)
    assert (doc["type"], doc["rdf:type"]) == ("Organization", ["pair:Project"])
    assert parsed(doc, "initiative").subtype == "project"


def test_mastodon_spelling_of_schema_org_is_read_as_schema_org() -> None:
    canonical = parsed(SAMPLES["initiative"], "initiative")
    doc = {"@context": [AS2_CONTEXT, CTX.context_url, MASTODON_INLINE], **SAMPLES["initiative"]}
    doc["schema:openingHours"] = doc.pop("schema:openingHours")
    assert parsed(doc, "initiative") == canonical
    full = {"@context": [AS2_CONTEXT, CTX.context_url], **SAMPLES["initiative"]}
    full["https://schema.org/openingHours"] = full.pop("schema:openingHours")
    assert parsed(full, "initiative") == canonical
    event = {**SAMPLES["event"], "eventStatus": "http://schema.org#EventCancelled"}
    assert parsed(event, "event").event_status == "EventCancelled"


def test_normalise_folds_terms_not_values() -> None:
    node = {
        "@id": f"{BASE}/x",
        "@type": ["https://www.w3.org/ns/activitystreams#Organization"],
        RDF_TYPE: [{"@id": "http://virtual-assembly.org/ontologies/pair#Organization"}],
        "http://schema.org#identifier": [{"@type": ["https://schema.org/PropertyValue"],
                                          "http://schema.org#value": [{"@value": "1"}]}],
        "https://schema.org/url": [{"@id": "https://schema.org/docs/full.html"}],
        "http://schema.org/openingHours": [{"@value": "Mo", "@type": "http://schema.org#Text"}],
    }  # fmt: skip
    assert normalise(node) == {
        "@id": f"{BASE}/x",
        "@type": ["https://www.w3.org/ns/activitystreams#Organization",
                  "http://virtual-assembly.org/ontologies/pair#Organization"],
        "http://schema.org/identifier": [{"@type": ["http://schema.org/PropertyValue"],
                                          "http://schema.org/value": [{"@value": "1"}]}],
        "http://schema.org/url": [{"@id": "https://schema.org/docs/full.html"}],
        "http://schema.org/openingHours": [{"@value": "Mo", "@type": "http://schema.org#Text"}],
    }  # fmt: skip
    assert [fold_schema(i) for i in ("http://schema.org#a", "https://schema.org#b", "http://example.org/c")] == [
        "http://schema.org/a", "http://schema.org/b", "http://example.org/c"]  # fmt: skip


def test_as2_documents_stay_json_ld_1_0_compatible() -> None:
    from pyld import jsonld as pyld_jsonld

    doc = as2("initiative")
    options = {"documentLoader": node_loader(CTX.context_url), "processingMode": "json-ld-1.0"}
    assert pyld_jsonld.expand(copy.deepcopy(doc), options) == jsonld.expand(doc, loader=node_loader(CTX.context_url))
