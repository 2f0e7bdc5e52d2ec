"""The node's context maps every term of docs/data-model.md to the right IRI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pyld import jsonld as pyld_jsonld

from vocab import AS, FEP_8A8E, OM2, OSC, PAIR, SCHEMA, VF, XSD, jsonld
from vocab.jsonld import JsonLdSyntaxError
from vocab.loader import own_context, vendored_context

try:
    from test_vocab_docs import BASE, CONTEXT, CONTEXT_URL, example_documents, node_loader
except ImportError:  # tests collected as a package
    from tests.unit.test_vocab_docs import BASE, CONTEXT, CONTEXT_URL, example_documents, node_loader

KINDS = sorted(example_documents())
AS2_TERMS = set(vendored_context("activitystreams.jsonld")["@context"])
OWN_TERMS = own_context()["@context"]


def _keys(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_keys(v) for v in node)) if node else set()
    if isinstance(node, dict):
        found = {k for k in node if k != "@context"}
        return found.union(*(_keys(v) for k, v in node.items() if k != "@context"))
    return set()


def _predicates(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_predicates(v) for v in node)) if node else set()
    if isinstance(node, dict):
        found = {k for k in node if not k.startswith("@")}
        return found.union(*(_predicates(v) for v in node.values()))
    return set()


def _types(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_types(v) for v in node)) if node else set()
    if isinstance(node, dict):
        found = set(node.get("@type", [])) if isinstance(node.get("@type"), list) else set()
        return found.union(*(_types(v) for k, v in node.items() if k != "@value"))
    return set()


@pytest.mark.parametrize("kind", KINDS)
def test_examples_expand_without_blank_predicates_or_types(kind: str) -> None:
    expanded = jsonld.expand(example_documents()[kind], loader=node_loader(), strict=True)
    predicates = _predicates(expanded)
    types = _types(expanded)
    assert predicates and types
    assert not [p for p in predicates if p.startswith("_:")]
    assert not [t for t in types if t.startswith("_:")]
    assert all(p.startswith(("http://", "https://")) for p in predicates)


@pytest.mark.parametrize("kind", KINDS)
def test_no_key_is_dropped(kind: str) -> None:
    dropped: list[str | None] = []
    options = {"documentLoader": node_loader()}
    pyld_jsonld.expand(example_documents()[kind], options, on_property_dropped=dropped.append)
    assert dropped == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_key_is_defined_by_as2_or_by_our_context(kind: str) -> None:
    for key in _keys(example_documents()[kind]):
        if key.startswith("@") or key in AS2_TERMS or key in OWN_TERMS:
            continue
        prefix, _, _ = key.partition(":")
        assert prefix in OWN_TERMS, f"{key} is neither an AS2 term, our term, nor a known prefix"


def test_strict_expansion_catches_an_undefined_term() -> None:
    doc = {"@context": CONTEXT, "id": f"{BASE}/x", "type": "Note", "slug": "x"}
    with pytest.raises(JsonLdSyntaxError, match="slug"):
        jsonld.expand(doc, loader=node_loader(), strict=True)
    # Without strict mode the mistake is silent, which is why the check exists.
    assert jsonld.to_nquads(doc, loader=node_loader()).count("\n") == 1


def test_strict_expansion_catches_an_undefined_type() -> None:
    doc = {"@context": CONTEXT, "id": f"{BASE}/x", "type": "Project"}
    with pytest.raises(JsonLdSyntaxError, match="@type=_:Project"):
        jsonld.expand(doc, loader=node_loader(), strict=True)


def _definition(term: str) -> tuple[str, str | None, str | None]:
    value = OWN_TERMS[term]
    if isinstance(value, str):
        return value, None, None
    return value["@id"], value.get("@type"), value.get("@container")


@pytest.mark.parametrize(
    ("term", "iri", "coercion"),
    [
        # FEP-0837 (ValueFlows, OM 2)
        ("Proposal", "vf:Proposal", None),
        ("Intent", "vf:Intent", None),
        ("purpose", "vf:purpose", None),
        ("publishes", "vf:publishes", "@id"),
        ("action", "vf:action", None),
        ("resourceClassifiedAs", "vf:resourceClassifiedAs", "@id"),
        ("resourceConformsTo", "vf:resourceConformsTo", "@id"),
        ("resourceQuantity", "vf:resourceQuantity", None),
        ("hasUnit", "om2:hasUnit", "@id"),
        ("hasNumericalValue", "om2:hasNumericalValue", None),
        # FEP-8a8e
        ("timezone", f"{FEP_8A8E}timezone", None),
        ("eventStatus", f"{FEP_8A8E}eventStatus", "@id"),
        ("organizers", f"{FEP_8A8E}organizers", "@id"),
        # schema.org
        ("PropertyValue", "schema:PropertyValue", None),
        ("propertyID", "schema:propertyID", None),
        ("value", "schema:value", None),
        ("address", "schema:address", None),
        ("PostalAddress", "schema:PostalAddress", None),
        ("postalCode", "schema:postalCode", None),
        ("VirtualLocation", "schema:VirtualLocation", None),
        # ActivityStreams extensions and Mastodon's actor terms
        ("Hashtag", "as:Hashtag", None),
        ("manuallyApprovesFollowers", "as:manuallyApprovesFollowers", None),
        ("movedTo", "as:movedTo", "@id"),
        ("alsoKnownAs", "as:alsoKnownAs", "@id"),
        ("discoverable", "toot:discoverable", None),
        ("indexable", "toot:indexable", None),
        ("featured", "toot:featured", "@id"),
        ("featuredTags", "toot:featuredTags", "@id"),
        ("attributionDomains", "toot:attributionDomains", "@id"),
        ("Emoji", "toot:Emoji", None),
        # IRI-valued and typed prefixed keys
        ("pair:hasTopic", "pair:hasTopic", "@id"),
        ("pair:hasPostalAddress", "pair:hasPostalAddress", "@id"),
        ("essglobal:legalForm", "essglobal:legalForm", "@id"),
        ("dcterms:license", "dcterms:license", "@id"),
        ("osc:cooperationStage", "osc:cooperationStage", "@id"),
        ("pair:startDate", "pair:startDate", "xsd:dateTime"),
        ("pair:endDate", "pair:endDate", "xsd:dateTime"),
        ("osc:emailPublic", "osc:emailPublic", "xsd:boolean"),
    ],
)
def test_term_definitions(term: str, iri: str, coercion: str | None) -> None:
    assert _definition(term)[:2] == (iri, coercion)


def test_focal_point_is_an_ordered_list() -> None:
    assert _definition("focalPoint") == ("toot:focalPoint", None, "@list")


@pytest.mark.parametrize(
    ("prefix", "namespace"), [("pair", PAIR), ("vf", VF), ("om2", OM2), ("schema", SCHEMA), ("osc", OSC), ("as", AS)]
)
def test_prefixes(prefix: str, namespace: str) -> None:
    assert OWN_TERMS[prefix] == namespace


def test_pair_coordinates_use_the_same_datatype_as_as2() -> None:
    as2 = vendored_context("activitystreams.jsonld")["@context"]
    assert as2["latitude"]["@type"] == "xsd:float"
    assert _definition("pair:latitude")[1] == _definition("pair:longitude")[1] == as2["latitude"]["@type"]


def test_our_context_redefines_no_as2_term_differently() -> None:
    as2 = vendored_context("activitystreams.jsonld")["@context"]
    for term in set(OWN_TERMS) & set(as2):
        assert OWN_TERMS[term] == as2[term], term


def test_context_is_json_ld_1_0_compatible() -> None:
    doc = example_documents()["need"]
    options = {"documentLoader": node_loader(), "processingMode": "json-ld-1.0"}
    assert pyld_jsonld.expand(doc, options) == jsonld.expand(doc, loader=node_loader())


def _nquads(kind: str) -> str:
    return jsonld.to_nquads(example_documents()[kind], loader=node_loader())


def test_need_triples_use_fep_0837_iris() -> None:
    need = f"<{BASE}/needs/benevoles_reparateurs>"
    primary = f"<{BASE}/needs/benevoles_reparateurs#primary>"
    lines = _nquads("need").splitlines()
    assert f'{need} <{VF}purpose> "request" .' in lines
    assert f"{need} <{VF}publishes> {primary} ." in lines
    assert f'{primary} <{VF}action> "deliverService" .' in lines
    assert f"{primary} <{VF}resourceClassifiedAs> <https://w3id.org/oscartes/vocab/needs/volunteers> ." in lines
    assert f"{primary} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{VF}Intent> ." in lines
    assert any(line.endswith(f"<{OM2}hasUnit> <{OM2}one> .") for line in lines)


def test_event_triples_use_fep_8a8e_iris() -> None:
    event = f"<{BASE}/events/repair_cafe_decembre>"
    lines = _nquads("event").splitlines()
    assert f'{event} <{FEP_8A8E}timezone> "Europe/Paris" .' in lines
    assert f"{event} <{FEP_8A8E}eventStatus> <{FEP_8A8E}EventScheduled> ." in lines
    organizers = f"<{BASE}/events/repair_cafe_decembre#organizers>"
    assert f"{event} <{FEP_8A8E}organizers> {organizers} ." in lines
    assert f"{organizers} <{AS}items> <{BASE}/initiatives/repair_cafe_massy> ." in lines
    assert f'{event} <{PAIR}startDate> "2025-12-13T14:00:00+01:00"^^<{XSD}dateTime> .' in lines
    online = f"<{BASE}/events/repair_cafe_decembre#online>"
    assert f"{online} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{SCHEMA}VirtualLocation> ." in lines


def test_initiative_iri_values_are_iris_not_strings() -> None:
    repair = f"<{BASE}/initiatives/repair_cafe_massy>"
    lines = _nquads("initiative").splitlines()
    for predicate, obj in [
        (f"{PAIR}hasTopic", "<https://w3id.org/oscartes/vocab/themes/repair>"),
        (f"{PAIR}homePage", "<https://repaircafe-massy.example>"),
        ("http://purl.org/essglobal/vocab/legalForm", "<https://w3id.org/oscartes/vocab/legal-forms/9220>"),
        (f"{OSC}cooperationStage", "<https://w3id.org/oscartes/vocab/gears/prototyping>"),
        ("http://purl.org/dc/terms/license", "<https://creativecommons.org/licenses/by-sa/4.0/>"),
        (f"{PAIR}needs", f"<{BASE}/needs/benevoles_reparateurs>"),
    ]:
        assert f"{repair} <{predicate}> {obj} ." in lines
    assert f'<{BASE}/initiatives/repair_cafe_massy#place> <{PAIR}latitude> "4.87309E1"^^<{XSD}float> .' in lines


def test_email_public_flag_is_a_boolean() -> None:
    doc = {"@context": CONTEXT, "id": f"{BASE}/initiatives/x", "type": "Organization", "osc:emailPublic": True}
    assert f'<{OSC}emailPublic> "true"^^<{XSD}boolean> .' in jsonld.to_nquads(doc, loader=node_loader())


def test_compaction_round_trip_keeps_our_terms() -> None:
    doc = example_documents()["need"]
    compacted = jsonld.compact(jsonld.expand(doc, loader=node_loader()), CONTEXT, loader=node_loader())
    assert compacted["purpose"] == "request"
    assert compacted["publishes"]["action"] == "deliverService"
    assert compacted["type"] == ["Note", "Proposal"]
    assert json.dumps(compacted).count("_:") == 0
    assert CONTEXT_URL in compacted["@context"]
