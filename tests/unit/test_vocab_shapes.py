"""The SHACL shapes accept the contract's documents and catch the usual mistakes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import rdflib

from vocab import OM2, VF, jsonld
from vocab.shapes import ValidationResult, shapes_graph, validate

try:
    from test_vocab_docs import BASE, example_documents, node_loader
except ImportError:  # tests collected as a package
    from tests.unit.test_vocab_docs import BASE, example_documents, node_loader

DOCS = example_documents()
INITIATIVE = f"{BASE}/initiatives/repair_cafe_massy"
EVENT = f"{BASE}/events/repair_cafe_decembre"
NEED = f"{BASE}/needs/benevoles_reparateurs"
PLACE = f"{INITIATIVE}#place"
ADDRESS = f"{INITIATIVE}#address"
SIRET = f"{INITIATIVE}#id-siret"


def _check(doc: dict[str, Any]) -> ValidationResult:
    return validate(jsonld.to_graph(doc, loader=node_loader()))


@pytest.mark.parametrize("kind", sorted(DOCS))
def test_contract_documents_conform(kind: str) -> None:
    result = _check(DOCS[kind])
    assert result.conforms, result.text
    assert result.focus_nodes == ()


Mutation = Callable[[dict[str, Any]], None]


def _set(*path: str | int, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return mutate


def _delete(*path: str | int) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]

    return mutate


def _identifier(property_id: str, value: str) -> Mutation:
    return _set(
        "schema:identifier",
        0,
        value={
            "id": SIRET,
            "type": "PropertyValue",
            "propertyID": property_id,
            "value": value,
        },
    )


XSD_DATE = {"@value": "2025-12-13", "@type": "http://www.w3.org/2001/XMLSchema#date"}

MISTAKES: list[tuple[str, str, Mutation, str, str]] = [
    # (test id, document, mutation, focus node that must fail, words of the report)
    ("initiative-without-name", "initiative", _delete("name"), INITIATIVE, "exactly one name"),
    (
        "initiative-two-names",
        "initiative",
        _set("name", value=["Repair Café", "Repair Cafe"]),
        INITIATIVE,
        "exactly one name",
    ),
    ("event-without-name", "event", _delete("name"), EVENT, "exactly one name"),
    ("event-two-names", "event", _set("name", value=["A", "B"]), EVENT, "exactly one name"),
    (
        "event-ends-before-it-starts",
        "event",
        _set("endTime", value="2025-12-13T13:00:00+01:00"),
        EVENT,
        "before it starts",
    ),
    (
        "pair-dates-backwards",
        "event",
        _set("pair:endDate", value="2025-12-12T18:00:00+01:00"),
        EVENT,
        "2025-12-12T18:00:00+01:00",
    ),
    ("start-not-a-datetime", "event", _set("startTime", value="samedi 13 décembre"), EVENT, "startTime"),
    ("start-is-a-date", "event", _set("startTime", value=XSD_DATE), EVENT, "startTime"),
    ("end-is-a-date", "event", _set("endTime", value=XSD_DATE), EVENT, "DatatypeConstraintComponent"),
    ("event-without-start", "event", _delete("startTime"), EVENT, "startTime"),
    ("timezone-not-iana", "event", _set("timezone", value="+01:00"), EVENT, "IANA"),
    (
        "latitude-too-big",
        "initiative",
        _set("location", "latitude", value=95.0),
        PLACE,
        "latitude must lie in [-90, 90]",
    ),
    (
        "latitude-too-small",
        "initiative",
        _set("location", "latitude", value=-90.5),
        PLACE,
        "latitude must lie in [-90, 90]",
    ),
    ("longitude-out-of-range", "initiative", _set("location", "longitude", value=181.0), PLACE, "longitude must lie"),
    (
        "pair-latitude-out-of-range",
        "initiative",
        _set("location", "pair:latitude", value=-91.0),
        PLACE,
        "pair:latitude must lie",
    ),
    (
        "pair-longitude-out-of-range",
        "initiative",
        _set("location", "pair:longitude", value=360.0),
        PLACE,
        "pair:longitude must lie",
    ),
    ("purpose-unknown", "need", _set("purpose", value="gift"), NEED, "purpose must be"),
    ("purpose-missing", "need", _delete("purpose"), NEED, "purpose must be"),
    ("purpose-is-an-iri", "need", _set("purpose", value={"@id": f"{VF}request"}), NEED, "purpose must be"),
    ("purpose-twice", "need", _set("purpose", value=["request", "offer"]), NEED, "purpose must be"),
    ("no-publishes", "need", _delete("publishes"), NEED, "exactly one primary Intent"),
    ("publishes-no-intent", "need", _set("publishes", "type", value="Note"), NEED, "exactly one primary Intent"),
    ("intent-without-action", "need", _delete("publishes", "action"), f"{NEED}#primary", "MinCountConstraintComponent"),
    (
        "unit-not-an-iri",
        "need",
        _set("publishes", "resourceQuantity", "hasUnit", value="one"),
        f"{NEED}#primary",
        "OM 2 unit",
    ),
    ("insee-code-too-short", "initiative", _set("location", "igeo:codeINSEE", value="9137"), PLACE, "commune code"),
    ("insee-code-bad-letter", "initiative", _set("location", "igeo:codeINSEE", value="91C77"), PLACE, "commune code"),
    (
        "fr-postal-code-4-digits",
        "initiative",
        _set("location", "address", "postalCode", value="9130"),
        ADDRESS,
        "French postal code",
    ),
    (
        "fr-pair-zip-code-letters",
        "initiative",
        _set("location", "address", "pair:addressZipCode", value="91 300"),
        ADDRESS,
        "French postal code",
    ),
    ("theme-as-text", "initiative", _set("pair:hasTopic", value=[{"@value": "repair"}]), INITIATIVE, "theme concepts"),
    ("event-theme-as-text", "event", _set("pair:hasTopic", value=[{"@value": "réparation"}]), EVENT, "theme concepts"),
    ("siret-13-digits", "initiative", _identifier("SIRET", "1234567890001"), SIRET, "SIRET 14 digits"),
    ("siret-with-spaces", "initiative", _identifier("SIRET", "123 456 789 00012"), SIRET, "SIRET 14 digits"),
    ("siren-8-digits", "initiative", _identifier("SIREN", "12345678"), SIRET, "SIREN is 9 digits"),
    ("rna-without-w", "initiative", _identifier("RNA", "913000123"), SIRET, "RNA number W"),
    ("rna-too-long", "initiative", _identifier("RNA", "W9130001234"), SIRET, "RNA number W"),
    (
        "identifier-without-value",
        "initiative",
        _delete("schema:identifier", 0, "value"),
        SIRET,
        "MinCountConstraintComponent",
    ),
    (
        "legal-form-as-text",
        "initiative",
        _set("essglobal:legalForm", value={"@value": "association"}),
        INITIATIVE,
        "legal-form concept",
    ),
]


@pytest.mark.parametrize(("kind", "mutate", "focus", "words"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistake_is_caught(kind: str, mutate: Mutation, focus: str, words: str) -> None:
    doc = copy.deepcopy(DOCS[kind])
    mutate(doc)
    result = _check(doc)
    assert not result.conforms
    assert focus in result.focus_nodes
    assert words in result.text


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("initiative", _set("location", "igeo:codeINSEE", value="2A004")),  # Corsica
        ("initiative", _set("location", "address", "addressCountry", value="BE")),  # not France
        ("initiative", _set("location", "latitude", value=-90.0)),
        ("initiative", _set("location", "longitude", value=180.0)),
        ("initiative", _delete("name")),  # replaced below by a nameMap
        ("event", _delete("endTime")),  # FEP-8a8e lets receivers infer it
        ("event", _set("endTime", value="2025-12-13T14:00:00+01:00")),  # zero-length is allowed
        ("event", _set("eventStatus", value="https://w3id.org/fep/8a8e/EventCancelled")),
        ("need", _delete("publishes", "resourceQuantity")),
        ("need", _set("publishes", "resourceQuantity", "hasUnit", value=f"{OM2}kilogram")),
        ("project", _set("schema:identifier", 0, "propertyID", value="EORI")),  # other ids pass
    ],
)
def test_acceptable_variants_conform(kind: str, mutate: Mutation) -> None:
    doc = copy.deepcopy(DOCS[kind])
    mutate(doc)
    if "name" not in doc:
        doc["nameMap"] = {"fr": "Repair Café de Massy", "en": "Massy Repair Café"}
    result = _check(doc)
    assert result.conforms, result.text


def test_two_names_in_the_same_language_are_refused() -> None:
    doc = copy.deepcopy(DOCS["initiative"])
    del doc["name"]
    doc["name"] = [{"@value": "Repair Café", "@language": "fr"}, {"@value": "Café réparation", "@language": "fr"}]
    assert not _check(doc).conforms


def test_shapes_are_open() -> None:
    graph = shapes_graph()
    closed = rdflib.URIRef("http://www.w3.org/ns/shacl#closed")
    assert list(graph.objects(None, closed)) == []
    doc = copy.deepcopy(DOCS["initiative"])
    doc["https://other-node.example/ns#extra"] = "kept"
    assert _check(doc).conforms


def test_shapes_target_the_contract_classes() -> None:
    graph = shapes_graph()
    targets = {str(o) for o in graph.objects(None, rdflib.URIRef("http://www.w3.org/ns/shacl#targetClass"))}
    assert {
        "http://virtual-assembly.org/ontologies/pair#Organization",
        "http://virtual-assembly.org/ontologies/pair#Project",
        "https://www.w3.org/ns/activitystreams#Event",
        f"{VF}Proposal",
        "https://www.w3.org/ns/activitystreams#Place",
        "http://virtual-assembly.org/ontologies/pair#Place",
        "http://schema.org/PostalAddress",
    } <= targets


@pytest.mark.parametrize(
    "end",
    ["2025-12-13T18:00:00", "demain soir", "2025-12-13T12:00:00Z"],
    ids=["no-offset", "ill-typed", "earlier-in-utc"],
)
def test_odd_end_times_never_crash_validation(end: str) -> None:
    doc = copy.deepcopy(DOCS["event"])
    doc["endTime"] = end
    result = _check(doc)
    assert not result.conforms
    # 12:00Z is 13:00+01:00, before the 14:00+01:00 start; the other two are
    # not comparable, so only their form is reported, not their order.
    assert ("before it starts" in result.text) is (end == "2025-12-13T12:00:00Z")
    assert ("UTC offset" in result.text) is (end != "2025-12-13T12:00:00Z")
