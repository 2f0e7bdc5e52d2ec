"""The four SKOS concept schemes and their typed loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import RDF, SKOS

from vocab import OSC, SCHEMES, VOCAB_BASE
from vocab.schemes import (
    Concept,
    concept,
    concepts,
    in_scheme,
    narrower_closure,
    scheme_files,
    scheme_iri,
    schemes_ntriples,
)

SHARED = Path("/work/shared/data")

NOTATIONS = {
    "themes": {
        "food",
        "agriculture",
        "organic",
        "short_circuits",
        "community_gardens",
        "housing",
        "mobility",
        "cycling",
        "car_pool",
        "energy",
        "climate",
        "reuse",
        "repair",
        "second_hand",
        "waste",
        "composting",
        "culture",
        "education",
        "employment",
        "finance",
        "health",
        "biodiversity",
        "water",
        "governance",
        "digital",
        "solidarity",
        "third_places",
        "coworking",
        "crafts",
        "tourism",
    },
    "needs": {
        "volunteers",
        "internship",
        "civic_service",
        "job",
        "premises",
        "land",
        "equipment",
        "funding",
        "skills",
        "skills_legal",
        "skills_financial",
        "skills_digital",
        "skills_communication",
        "partnership",
        "communication",
        "goods",
    },
    "gears": {
        "actors",
        "pilot",
        "core_group",
        "wider_collective",
        "structuring",
        "transformation",
        "findings",
        "aspiration",
        "experimenting",
        "lasting",
        "resources",
        "first_resources",
        "experiment_resources",
        "economic_model",
        "communication",
        "comm_project",
        "comm_experiments",
        "comm_impacts",
        "process",
        "diagnosis",
        "foresight",
        "feasibility",
        "prototyping",
        "evaluation",
        "deployment",
    },
}

PARENTS = {
    "themes": {
        "organic": "food",
        "short_circuits": "food",
        "community_gardens": "food",
        "cycling": "mobility",
        "car_pool": "mobility",
        "repair": "reuse",
        "second_hand": "reuse",
        "waste": "reuse",
        "composting": "waste",
        "coworking": "third_places",
    },
    "needs": {n: "skills" for n in ("skills_legal", "skills_financial", "skills_digital", "skills_communication")},
    "gears": {
        **{g: "actors" for g in ("pilot", "core_group", "wider_collective", "structuring")},
        **{g: "transformation" for g in ("findings", "aspiration", "experimenting", "lasting")},
        **{g: "resources" for g in ("first_resources", "experiment_resources", "economic_model")},
        **{g: "communication" for g in ("comm_project", "comm_experiments", "comm_impacts")},
        **{g: "process" for g in ("diagnosis", "foresight", "feasibility", "prototyping", "evaluation", "deployment")},
    },
}

SERVICE = {
    "volunteers",
    "internship",
    "civic_service",
    "job",
    "skills",
    "skills_legal",
    "skills_financial",
    "skills_digital",
    "skills_communication",
    "partnership",
    "communication",
}
TRANSFER = {"premises", "land", "equipment", "funding", "goods"}
FAMILIES = {"association", "cooperative", "mutual", "foundation", "company", "public"}


def _graph() -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in scheme_files().values():
        graph.parse(path, format="turtle")
    return graph


GRAPH = _graph()
ALL = sorted(GRAPH.subjects(RDF.type, SKOS.Concept))


def _iri(scheme: str, notation: str) -> rdflib.URIRef:
    return rdflib.URIRef(f"{VOCAB_BASE}{scheme}/{notation}")


def _notations(scheme: str) -> set[str]:
    return {c.notation for c in concepts().values() if c.scheme == scheme}


@pytest.mark.parametrize("scheme", sorted(NOTATIONS))
def test_fixed_notations(scheme: str) -> None:
    assert _notations(scheme) == NOTATIONS[scheme]


def test_legal_form_notations_are_families_or_insee_codes() -> None:
    notations = _notations("legal-forms")
    assert notations >= FAMILIES
    codes = notations - FAMILIES
    assert all(re.fullmatch(r"[1-9][0-9]{3}", code) for code in codes), codes
    assert {"9220", "9230", "9300", "5458", "5558", "5658", "6317", "8210", "5710", "7210", "7410", "9223"} <= codes


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("9220", "Association déclarée"),
        ("9230", "Association déclarée, reconnue d'utilité publique"),
        ("5458", "SARL coopérative ouvrière de production (SCOP)"),
        ("5558", "SA coopérative ouvrière de production (SCOP) à conseil d'administration"),
        ("7210", "Commune et commune nouvelle"),
        ("7410", "Groupement d'intérêt public (GIP)"),
    ],
)
def test_insee_labels(code: str, label: str) -> None:
    found = concept("legal-forms", code)
    assert found is not None
    assert found.labels["fr"] == label


def test_every_insee_code_sits_under_a_family() -> None:
    for c in concepts().values():
        if c.scheme == "legal-forms" and c.notation not in FAMILIES:
            assert len(c.broader) == 1
            assert c.broader[0].rsplit("/", 1)[1] in FAMILIES


@pytest.mark.parametrize("scheme", sorted(PARENTS))
def test_hierarchy(scheme: str) -> None:
    for notation in NOTATIONS[scheme]:
        found = concept(scheme, notation)
        assert found is not None
        parent = PARENTS[scheme].get(notation)
        assert found.broader == ((str(_iri(scheme, parent)),) if parent else ())


@pytest.mark.parametrize("subject", ALL, ids=str)
def test_concept_is_well_formed(subject: rdflib.URIRef) -> None:
    labels = {lit.language for lit in GRAPH.objects(subject, SKOS.prefLabel)}
    assert {"fr", "en"} <= labels
    assert len(list(GRAPH.objects(subject, SKOS.prefLabel))) == len(labels), "one prefLabel per language"
    notation = GRAPH.value(subject, SKOS.notation)
    assert isinstance(notation, rdflib.Literal)
    assert notation.datatype is None and notation.language is None
    assert str(notation) == str(subject).rsplit("/", 1)[1]
    scheme = str(subject).removeprefix(VOCAB_BASE).split("/")[0]
    assert list(GRAPH.objects(subject, SKOS.inScheme)) == [rdflib.URIRef(scheme_iri(scheme))]
    assert any(d.language == "fr" for d in GRAPH.objects(subject, SKOS.definition))


@pytest.mark.parametrize("subject", ALL, ids=str)
def test_broader_and_narrower_are_symmetric(subject: rdflib.URIRef) -> None:
    for parent in GRAPH.objects(subject, SKOS.broader):
        assert (parent, SKOS.narrower, subject) in GRAPH
    for child in GRAPH.objects(subject, SKOS.narrower):
        assert (child, SKOS.broader, subject) in GRAPH


@pytest.mark.parametrize("subject", ALL, ids=str)
def test_top_concepts_are_declared_both_ways(subject: rdflib.URIRef) -> None:
    scheme = next(GRAPH.objects(subject, SKOS.inScheme))
    is_top = (subject, SKOS.topConceptOf, scheme) in GRAPH
    assert is_top == ((scheme, SKOS.hasTopConcept, subject) in GRAPH)
    assert is_top == (GRAPH.value(subject, SKOS.broader) is None)


def test_each_scheme_is_declared() -> None:
    for scheme in SCHEMES:
        iri = rdflib.URIRef(scheme_iri(scheme))
        assert (iri, RDF.type, SKOS.ConceptScheme) in GRAPH
        assert {lit.language for lit in GRAPH.objects(iri, SKOS.prefLabel)} == {"fr", "en"}


def test_every_need_has_its_default_action() -> None:
    for notation in NOTATIONS["needs"]:
        found = concept("needs", notation)
        assert found is not None
        assert found.default_action == ("deliverService" if notation in SERVICE else "transfer")
    assert NOTATIONS["needs"] == SERVICE | TRANSFER
    action = rdflib.URIRef(f"{OSC}defaultAction")
    assert all(isinstance(o, rdflib.Literal) and o.datatype is None for o in GRAPH.objects(None, action))
    assert concept("themes", "food") is not None and concept("themes", "food").default_action is None  # type: ignore[union-attr]


def test_gears_carry_key_questions() -> None:
    for notation, dimension in PARENTS["gears"].items():
        notes = [n for n in GRAPH.objects(_iri("gears", notation), SKOS.scopeNote) if n.language == "fr"]
        assert len(notes) == 1, notation
        assert "?" in str(notes[0])
        assert dimension in NOTATIONS["gears"]


MAPPINGS = sorted(
    {(str(s), str(p), str(o)) for p in (SKOS.closeMatch, SKOS.exactMatch) for s, o in GRAPH.subject_objects(p)}
)


def _reference_subjects() -> set[str]:
    graph = rdflib.Graph()
    for path in sorted((SHARED / "taxonomies").glob("essglobal-*.ttl")):
        graph.parse(path, format="turtle")
    graph.parse(SHARED / "ontologies" / "pair.ttl", format="turtle")
    return {str(s) for s in graph.subjects()}


def test_mappings_exist() -> None:
    assert len(MAPPINGS) >= 40
    targets = {o for _, _, o in MAPPINGS}
    assert all(
        t.startswith(("http://purl.org/essglobal/standard/", "http://virtual-assembly.org/ontologies/pair#"))
        for t in targets
    )


def test_every_mapping_target_exists_in_the_reference_files() -> None:
    if not (SHARED / "taxonomies").is_dir() or not (SHARED / "ontologies" / "pair.ttl").is_file():
        pytest.skip("/work/shared/data (ESSGlobal taxonomies, PAIR ontology) is not on this machine")
    known = _reference_subjects()
    missing = sorted(o for _, _, o in MAPPINGS if o not in known)
    assert missing == []


def test_loader_functions() -> None:
    repair = concept("themes", "repair")
    assert isinstance(repair, Concept)
    assert repair.iri == f"{VOCAB_BASE}themes/repair"
    assert repair.scheme == "themes"
    assert repair.label("en") == "Repair" and repair.label("fr") == "Réparation" and repair.label("de") == "Réparation"
    assert concept("themes", "nope") is None
    assert in_scheme(repair.iri, "themes")
    assert not in_scheme(repair.iri, "needs")
    assert not in_scheme("https://example.org/x", "themes")
    with pytest.raises(ValueError, match="unknown concept scheme"):
        scheme_iri("colours")
    with pytest.raises(ValueError):
        concept("colours", "red")


def test_narrower_closure() -> None:
    reuse = f"{VOCAB_BASE}themes/reuse"
    expected = {f"{VOCAB_BASE}themes/{n}" for n in ("reuse", "repair", "second_hand", "waste", "composting")}
    assert narrower_closure(reuse) == expected
    assert narrower_closure(f"{VOCAB_BASE}themes/water") == {f"{VOCAB_BASE}themes/water"}
    assert narrower_closure("https://example.org/x") == frozenset()


def test_concepts_mapping_is_read_only_and_complete() -> None:
    index = concepts()
    assert len(index) == len(ALL)
    with pytest.raises(TypeError):
        index["x"] = index[next(iter(index))]  # type: ignore[index]


def test_schemes_ntriples_loads_back() -> None:
    text = schemes_ntriples()
    graph = rdflib.Graph().parse(data=text, format="nt")
    assert len(graph) == len(GRAPH)
    assert text.splitlines() == sorted(text.splitlines())


def test_scheme_files() -> None:
    files = scheme_files()
    assert list(files) == list(SCHEMES)
    assert all(path.is_file() and path.suffix == ".ttl" for path in files.values())
