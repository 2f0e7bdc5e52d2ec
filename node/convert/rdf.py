"""Published documents to RDF triples, without a JSON-LD processor.

The term table below is this module's own declaration of what each key means. The node's
JSON-LD context declares the same thing for everyone else; a test expands every published
document with pyld and checks that both give the same graph, so neither can drift alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import pyoxigraph as ox

from node.convert.common import canonical_double

AS = "https://www.w3.org/ns/activitystreams#"
PAIR = "http://virtual-assembly.org/ontologies/pair#"
SCHEMA = "http://schema.org/"
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
XSD = "http://www.w3.org/2001/XMLSchema#"
FEP_8A8E = "https://w3id.org/fep/8a8e/"
SEC = "https://w3id.org/security#"
TOOT = "http://joinmastodon.org/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDF_TYPE = ox.NamedNode(RDF + "type")
_RDF_FIRST, _RDF_REST, _RDF_NIL = (ox.NamedNode(RDF + name) for name in ("first", "rest", "nil"))

ValueKind = Literal["iri", "str", "datetime", "float", "number", "bool", "node", "skip"]

TERMS: dict[str, tuple[str, ValueKind]] = {
    "preferredUsername": (AS + "preferredUsername", "str"),
    "name": (AS + "name", "str"),
    "summary": (AS + "summary", "str"),
    "content": (AS + "content", "str"),
    "url": (AS + "url", "iri"),
    "published": (AS + "published", "datetime"),
    "updated": (AS + "updated", "datetime"),
    "startTime": (AS + "startTime", "datetime"),
    "endTime": (AS + "endTime", "datetime"),
    "latitude": (AS + "latitude", "float"),
    "longitude": (AS + "longitude", "float"),
    "attributedTo": (AS + "attributedTo", "iri"),
    "location": (AS + "location", "node"),
    "icon": (AS + "icon", "node"),
    "address": (SCHEMA + "address", "node"),
    "streetAddress": (SCHEMA + "streetAddress", "str"),
    "postalCode": (SCHEMA + "postalCode", "str"),
    "addressLocality": (SCHEMA + "addressLocality", "str"),
    "addressCountry": (SCHEMA + "addressCountry", "str"),
    "propertyID": (SCHEMA + "propertyID", "str"),
    "value": (SCHEMA + "value", "str"),
    "schema:identifier": (SCHEMA + "identifier", "node"),
    "schema:openingHours": (SCHEMA + "openingHours", "str"),
    "eventStatus": (FEP_8A8E + "eventStatus", "iri"),
    "timezone": (FEP_8A8E + "timezone", "str"),
    "organizers": (FEP_8A8E + "organizers", "node"),
    "items": (AS + "items", "iri"),
    "to": (AS + "to", "iri"),
    "tag": (AS + "tag", "node"),
    "href": (AS + "href", "iri"),
    "purpose": (VF + "purpose", "str"),
    "publishes": (VF + "publishes", "node"),
    "action": (VF + "action", "str"),
    "resourceClassifiedAs": (VF + "resourceClassifiedAs", "iri"),
    "resourceConformsTo": (VF + "resourceConformsTo", "iri"),
    "resourceQuantity": (VF + "resourceQuantity", "node"),
    "hasUnit": (OM2 + "hasUnit", "iri"),
    "hasNumericalValue": (OM2 + "hasNumericalValue", "str"),
    "inbox": ("http://www.w3.org/ns/ldp#inbox", "iri"),
    "outbox": (AS + "outbox", "iri"),
    "followers": (AS + "followers", "iri"),
    "following": (AS + "following", "iri"),
    "featured": (TOOT + "featured", "iri"),
    "endpoints": (AS + "endpoints", "node"),
    "sharedInbox": (AS + "sharedInbox", "iri"),
    "publicKey": (SEC + "publicKey", "node"),
    "owner": (SEC + "owner", "iri"),
    "publicKeyPem": (SEC + "publicKeyPem", "str"),
    "manuallyApprovesFollowers": (AS + "manuallyApprovesFollowers", "bool"),
    "discoverable": (TOOT + "discoverable", "bool"),
    "indexable": (TOOT + "indexable", "bool"),
    "attachment": (AS + "attachment", "node"),
    # Bare domain names, coerced to @id by Mastodon's context: relative IRIs, which JSON-LD drops.
    "attributionDomains": (TOOT + "attributionDomains", "skip"),
    "pair:label": (PAIR + "label", "str"),
    "pair:description": (PAIR + "description", "str"),
    "pair:homePage": (PAIR + "homePage", "iri"),
    "pair:hasTopic": (PAIR + "hasTopic", "iri"),
    "pair:hasLocation": (PAIR + "hasLocation", "iri"),
    "pair:hasPostalAddress": (PAIR + "hasPostalAddress", "iri"),
    "pair:latitude": (PAIR + "latitude", "float"),
    "pair:longitude": (PAIR + "longitude", "float"),
    "pair:addressStreet": (PAIR + "addressStreet", "str"),
    "pair:addressZipCode": (PAIR + "addressZipCode", "str"),
    "pair:addressLocality": (PAIR + "addressLocality", "str"),
    "pair:addressCountry": (PAIR + "addressCountry", "str"),
    "pair:e-mail": (PAIR + "e-mail", "str"),
    "pair:phone": (PAIR + "phone", "str"),
    "pair:partnerOf": (PAIR + "partnerOf", "iri"),
    "pair:involves": (PAIR + "involves", "iri"),
    "pair:needs": (PAIR + "needs", "iri"),
    "pair:offers": (PAIR + "offers", "iri"),
    "pair:startDate": (PAIR + "startDate", "datetime"),
    "pair:endDate": (PAIR + "endDate", "datetime"),
    "essglobal:legalForm": ("http://purl.org/essglobal/vocab/legalForm", "iri"),
    "igeo:codeINSEE": ("http://rdf.insee.fr/def/geo#codeINSEE", "str"),
    "dcterms:license": ("http://purl.org/dc/terms/license", "iri"),
    "osc:cooperationStage": ("https://w3id.org/oscartes/ns#cooperationStage", "iri"),
}

TYPES: dict[str, str] = {
    "Organization": AS + "Organization",
    "Event": AS + "Event",
    "Note": AS + "Note",
    "Document": AS + "Document",
    "Place": AS + "Place",
    "Image": AS + "Image",
    "Collection": AS + "Collection",
    "Hashtag": AS + "Hashtag",
    "Tombstone": AS + "Tombstone",
    "Proposal": VF + "Proposal",
    "Intent": VF + "Intent",
    "PostalAddress": SCHEMA + "PostalAddress",
    "PropertyValue": SCHEMA + "PropertyValue",
    "VirtualLocation": SCHEMA + "VirtualLocation",
    "pair:Organization": PAIR + "Organization",
    "pair:Project": PAIR + "Project",
    "pair:Event": PAIR + "Event",
    "pair:Document": PAIR + "Document",
    "pair:Place": PAIR + "Place",
    "pair:PostalAddress": PAIR + "PostalAddress",
    "essglobal:SSEInitiative": "http://purl.org/essglobal/vocab/SSEInitiative",
}

_XSD_STRING = ox.NamedNode(XSD + "string")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _literal(value: Any, kind: ValueKind) -> ox.Literal:
    if kind == "bool":
        return ox.Literal("true" if value else "false", datatype=ox.NamedNode(XSD + "boolean"))
    if kind == "datetime":
        return ox.Literal(value, datatype=ox.NamedNode(XSD + "dateTime"))
    if kind in ("float", "number"):
        # As JSON-LD's toRdf: a JSON integer keeps its digits, any other number is a canonical
        # double; the datatype is the term's coercion, else xsd:integer or xsd:double.
        is_int = isinstance(value, int)
        lexical = str(value) if is_int else canonical_double(float(value))
        datatype = "float" if kind == "float" else "integer" if is_int else "double"
        return ox.Literal(lexical, datatype=ox.NamedNode(XSD + datatype))
    return ox.Literal(str(value), datatype=_XSD_STRING)


def doc_to_triples(doc: Mapping[str, Any]) -> Iterator[ox.Triple]:
    """Every triple a published document states. Unknown keys are a bug, not data: raise."""
    subject = ox.NamedNode(doc["id"])
    for key, raw in doc.items():
        if key in ("@context", "id"):
            continue
        if key in ("type", "rdf:type"):  # AS2 documents put all but the first type under rdf:type
            for name in _as_list(raw):
                yield ox.Triple(subject, RDF_TYPE, ox.NamedNode(TYPES[name]))
            continue
        predicate_iri, kind = TERMS[key]
        if kind == "skip":
            continue
        predicate = ox.NamedNode(predicate_iri)
        for value in _as_list(raw):
            if kind == "node":
                yield ox.Triple(subject, predicate, ox.NamedNode(value["id"]))
                yield from doc_to_triples(value)
            elif kind == "iri":
                yield ox.Triple(subject, predicate, ox.NamedNode(value))
            else:
                yield ox.Triple(subject, predicate, _literal(value, kind))


def to_ntriples(triples: Iterator[ox.Triple] | list[ox.Triple]) -> str:
    return (ox.serialize(list(triples), format=ox.RdfFormat.N_TRIPLES) or b"").decode("utf-8")


PREFIXES = {
    "as": AS,
    "pair": PAIR,
    "schema": SCHEMA,
    "vf": VF,
    "om2": OM2,
    "essglobal": "http://purl.org/essglobal/vocab/",
    "igeo": "http://rdf.insee.fr/def/geo#",
    "dcterms": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "osc": "https://w3id.org/oscartes/ns#",
    "xsd": XSD,
}
_RDF_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "rdfxml": ox.RdfFormat.RDF_XML,
    "jsonld": ox.RdfFormat.JSON_LD,
}
_WITH_PREFIXES = ("turtle", "trig", "rdfxml")


def serialize(ntriples: str, fmt: str, graph: str) -> bytes:
    """Re-serialize stored N-Triples. N-Quads and TriG put them in `graph` (an origin's graph,
    for a dump), or in the default graph when `graph` is empty (a document read on its own)."""
    return write(list(ox.parse(ntriples.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES)), fmt, graph)


def write(triples: list[ox.Triple], fmt: str, graph: str = "") -> bytes:
    if fmt in ("nquads", "trig"):
        g: ox.NamedNode | ox.DefaultGraph = ox.NamedNode(graph) if graph else ox.DefaultGraph()
        quads = [ox.Quad(t.subject, t.predicate, t.object, g) for t in triples]
        prefixes = PREFIXES if fmt == "trig" else None
        return ox.serialize(quads, format=_RDF_FORMATS[fmt], prefixes=prefixes) or b""
    prefixes = PREFIXES if fmt in _WITH_PREFIXES else None
    return ox.serialize(triples, format=_RDF_FORMATS[fmt], prefixes=prefixes) or b""


def collection_to_triples(doc: Mapping[str, Any], items: list[ox.Triple]) -> list[ox.Triple]:
    """An AS2 OrderedCollection or OrderedCollectionPage as its JSON-LD states it, without a
    JSON-LD processor: `orderedItems` is an rdf:List (AS2's context makes it a `@list`), and
    `items` are the triples of the records it lists, as the JSON page embeds them."""
    subject = ox.NamedNode(doc["id"])
    total = ox.Literal(str(doc["totalItems"]), datatype=ox.NamedNode(XSD + "nonNegativeInteger"))
    triples = [ox.Triple(subject, RDF_TYPE, ox.NamedNode(AS + doc["type"])),
               ox.Triple(subject, ox.NamedNode(AS + "totalItems"), total)]  # fmt: skip
    triples += [ox.Triple(subject, ox.NamedNode(AS + key), ox.NamedNode(doc[key]))
                for key in ("first", "partOf", "next") if key in doc]  # fmt: skip
    if "orderedItems" in doc:
        node: ox.NamedNode | ox.BlankNode = _RDF_NIL
        for member in reversed(doc["orderedItems"]):
            cell = ox.BlankNode()
            triples += [ox.Triple(cell, _RDF_FIRST, ox.NamedNode(member["id"])), ox.Triple(cell, _RDF_REST, node)]
            node = cell
        triples.append(ox.Triple(subject, ox.NamedNode(AS + "items"), node))
    return triples + items

