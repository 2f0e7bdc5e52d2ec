"""The demo territory node/demo/territory.jsonld and its builder scripts/build_demo.py.

The file checks always run. The tests that read shared/data/datasets skip when it is absent.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRITORY = ROOT / "node" / "demo" / "territory.jsonld"
BUILDER = ROOT / "scripts" / "build_demo.py"
DATA_DIR = ROOT.parent / "shared" / "data" / "datasets"
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "semapps-testData.sanitized.ttl").exists(),
    reason=f"shared datasets not found in {DATA_DIR}: builder tests skipped (the committed file is still checked)",
)

VOCAB = "https://w3id.org/oscartes/vocab/"
THEMES = {
    "food", "agriculture", "organic", "short_circuits", "community_gardens", "housing", "mobility", "cycling",
    "car_pool", "energy", "climate", "reuse", "repair", "second_hand", "waste", "composting", "culture", "education",
    "employment", "finance", "health", "biodiversity", "water", "governance", "digital", "solidarity", "third_places",
    "coworking", "crafts", "tourism",
}
CATEGORIES = {
    "volunteers", "internship", "civic_service", "job", "premises", "land", "equipment", "funding", "skills",
    "skills_legal", "skills_financial", "skills_digital", "skills_communication", "partnership", "communication",
    "goods",
}
COUNTS = {
    "initiatives": (30, 45),
    "events": (3, 9),
    "needs": (12, 30),
    "offers": (8, 25),
    "resources": (2, 4),
    "places": (2, 4),
}
TYPES = {
    "events": ["Event", "pair:Event"],
    "needs": ["Note", "Proposal"],
    "offers": ["Note", "Proposal"],
    "resources": ["Document", "pair:Document"],
    "places": ["Place", "pair:Place"],
}
INITIATIVE_TYPES = (["Organization", "pair:Organization", "essglobal:SSEInitiative"], ["Organization", "pair:Project"])
# What the node generates or adds itself, and must not be in the demo documents.
NODE_MADE = {"@context", "pair:needs", "pair:offers", "dcterms:license", "pair:label", "pair:description",
             "pair:startDate", "pair:endDate", "pair:latitude", "pair:longitude", "pair:hasLocation",
             "pair:hasPostalAddress", "pair:addressStreet", "pair:addressZipCode", "pair:addressLocality",
             "pair:addressCountry"}
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def territory() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TERRITORY.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def records(territory: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(record["collection"], record["doc"]) for record in territory["records"]]


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_demo", BUILDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docs_of(records: list[tuple[str, dict[str, Any]]], collection: str) -> list[dict[str, Any]]:
    return [doc for coll, doc in records if coll == collection]


def walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in value, value included."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# The committed file


def test_envelope(territory: dict[str, Any]) -> None:
    assert territory["@context"] == [
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/oscartes/ns/context.jsonld",
    ]
    attribution = territory["attribution"]
    for fact in ("Apache-2.0", "assemblee-virtuelle/semapps", "751d53df941ef3f5f023bb42243038f355497181",
                 "43c12dc0f2cce1b2d7485208361727842aaa2509"):
        assert fact in attribution
    assert set(territory) == {"@context", "attribution", "records"}
    assert all(set(record) == {"collection", "doc"} for record in territory["records"])


def test_counts_per_collection(records: list[tuple[str, dict[str, Any]]]) -> None:
    counts = Counter(collection for collection, _ in records)
    assert set(counts) == set(COUNTS)
    for collection, (low, high) in COUNTS.items():
        assert low <= counts[collection] <= high, (collection, counts[collection])
    assert 60 <= len(records) <= 90
    colibris = [d for d in docs_of(records, "initiatives") if "published" in d]  # SemApps gives no dates
    assert 10 <= len(colibris) <= 20


def test_ids_and_slugs(records: list[tuple[str, dict[str, Any]]]) -> None:
    seen: set[str] = set()
    for collection, doc in records:
        slug_pattern = r"[a-z0-9_]{1,30}" if collection == "initiatives" else r"[a-z0-9_]{1,60}"
        match = re.fullmatch(rf"{collection}/({slug_pattern})", doc["id"])
        assert match, doc["id"]
        assert doc["id"] not in seen
        seen.add(doc["id"])
        if collection == "initiatives":
            assert doc["preferredUsername"] == match.group(1)
        for node in walk(doc):
            assert node is doc or "id" not in node, f"nested node with an id in {doc['id']}"


def test_types(records: list[tuple[str, dict[str, Any]]]) -> None:
    for collection, doc in records:
        if collection == "initiatives":
            assert doc["type"] in INITIATIVE_TYPES
        else:
            assert doc["type"] == TYPES[collection]
        assert doc["name"].strip()


def test_no_node_made_fields(records: list[tuple[str, dict[str, Any]]]) -> None:
    for collection, doc in records:
        for node in walk(doc):
            assert not NODE_MADE & set(node), (doc["id"], NODE_MADE & set(node))
        assert collection in ("resources", "events") or "url" not in doc
        assert collection != "events" or "summary" not in doc
        for value in walk(doc):
            assert all(v not in ("", [], {}, None) for v in value.values()), doc["id"]


def test_references_point_to_kept_initiatives(records: list[tuple[str, dict[str, Any]]]) -> None:
    initiatives = {doc["id"] for doc in docs_of(records, "initiatives")}
    links = 0
    for _, doc in records:
        for key in ("attributedTo", "organizers", "pair:partnerOf", "pair:involves"):
            targets = doc.get(key, [])
            for target in [targets] if isinstance(targets, str) else targets:
                assert target in initiatives, (doc["id"], key, target)
                links += 1
    assert links > 40
    for collection in ("events", "needs", "offers"):
        assert all("attributedTo" in doc for doc in docs_of(records, collection))
    assert any("pair:partnerOf" in doc for doc in docs_of(records, "initiatives"))


def test_themes_use_the_fixed_notations(records: list[tuple[str, dict[str, Any]]]) -> None:
    for collection, doc in records:
        for iri in doc.get("pair:hasTopic", []):
            assert iri.startswith(VOCAB + "themes/") and iri.rsplit("/", 1)[1] in THEMES, iri
        if collection == "initiatives":
            assert doc["pair:hasTopic"], doc["id"]


def test_needs_and_offers(records: list[tuple[str, dict[str, Any]]]) -> None:
    found: dict[str, set[str]] = {}
    for collection, purpose in (("needs", "request"), ("offers", "offer")):
        found[collection] = set()
        for doc in docs_of(records, collection):
            assert doc["purpose"] == purpose
            assert doc["content"].strip() and "<" not in doc["content"]
            assert doc["publishes"]["type"] == "Intent"
            for iri in doc["publishes"]["resourceClassifiedAs"]:
                assert iri.startswith(VOCAB + "needs/") and iri.rsplit("/", 1)[1] in CATEGORIES, iri
                found[collection].add(iri)
    assert len(found["needs"] & found["offers"]) >= 4, found


def test_events(records: list[tuple[str, dict[str, Any]]]) -> None:
    for doc in docs_of(records, "events"):
        start, end = datetime.fromisoformat(doc["startTime"]), datetime.fromisoformat(doc["endTime"])
        assert start.tzinfo and end.tzinfo
        assert end >= start, doc["id"]
        assert doc["timezone"] == "Europe/Paris"
        assert doc["organizers"] and doc["attributedTo"] in doc["organizers"]


def test_places_and_coordinates(records: list[tuple[str, dict[str, Any]]]) -> None:
    located = 0
    for _, doc in records:
        for node in walk(doc):
            if "latitude" in node or "longitude" in node:
                lat, lon = node["latitude"], node["longitude"]
                assert -90 <= lat <= 90 and -180 <= lon <= 180
                assert 41 <= lat <= 51.5 and -5.5 <= lon <= 10, "outside metropolitan France"
                located += 1
            if "igeo:codeINSEE" in node:
                assert re.fullmatch(r"\d[0-9AB]\d{3}", node["igeo:codeINSEE"])
            if node.get("type") == "PostalAddress":
                assert node["addressCountry"] == "FR"
            if node.get("type") == "Place":
                assert node["name"].strip()
    assert located >= 20
    assert all("latitude" in doc for doc in docs_of(records, "places"))


def test_texts_dates_and_legal_forms(records: list[tuple[str, dict[str, Any]]], territory: dict[str, Any]) -> None:
    for _, doc in records:
        summary = doc.get("summary", "")
        assert len(summary) <= 610 and not re.search(r"</?[a-z]+[^>]*>", summary), doc["id"]
        for key in ("published", "updated"):
            assert key not in doc or UTC_TIME.fullmatch(doc[key]), (doc["id"], key)
        if "updated" in doc:
            assert "published" in doc and doc["updated"] >= doc["published"]
        assert doc.get("essglobal:legalForm", VOCAB + "legal-forms/9220") == VOCAB + "legal-forms/9220"
    text = json.dumps(territory, ensure_ascii=False)
    assert not re.search(r"\b0\d(?:[ .]?\d\d){4}\b", text), "a phone number"
    assert "Ã" not in text, "mis-decoded text"


# The builder


NEEDS = [  # real sentences of the Colibris "Besoins" sections, and their categories
    ("Il manque une salle: - Pouvant contenir 100 personnes - Gratuite ou au moins pas trop chère", ["premises"]),
    ("Recherche un local sur le Clermontois, en location ou en achat (mini 200m² avec accessibilité et jardin)",
     ["premises"]),
    ("Des Terres à cultiver", ["land"]),
    ("Du bâti", ["premises"]),
    ("Recherche d'un foncier sur Nogent-sur-Oise,", ["land"]),
    ("Un Chef de culture formé et expérimenté en Permaculture", ["job"]),
    ("Des bénévoles pour les chantiers et actions à venir", ["volunteers"]),
    ("Des moyens financiers", ["funding"]),
    ("recherche réparateurs(-rices) et couturièr(es)", ["volunteers"]),
    ("Humains : compétences juridiques / financières / fiscales / graphiste-webdesigner / commercial-vendeur",
     ["skills_legal", "skills_financial", "skills_digital", "skills_communication"]),
    ("Matériel : supports rayons, étagères, tapis roulant, caisse...", ["equipment"]),
    ("Réflexions sur le statut de l'épicerie : SCOP, SCIC ou association", ["skills_legal"]),
    ("outils de jardinage, bidons pour recuperer l'eau de pluie", ["equipment"]),
    ("Diffusion du projet", ["communication"]),
    ("Création à venir, recherche de partenaires", ["partnership"]),
    ("Salle pour l'animation, contact auprès de commerçants de la ville", ["premises", "partnership"]),
    ("Palettes, matériel de bricolage, grillage métallique de récupération, personnes formées au compostage",
     ["equipment", "goods", "skills"]),
    ("Assez rapidement nous aurions besoin d'un électricien, d'un plombier et d'un maçon.", ["skills"]),
    ("Le travail de Reconnexion se fait autant au niveau humain que technologique. Quels que soient vos "
     "compétences, si vous avez un intérêt pour la raison d'être de Reconnexion, vous êtes les bienvenu(e)s !",
     ["volunteers"]),
    ("Pas de besoin matériel, juste envie d'essaimer et de partager nos expériences.", []),
    ("Nous avons 2 ou 3 parcelles pour accueillir de nouveaux jardiniers", []),
    ("Recherche d'adresses de producteurs pratiquant une agriculture écologique pour faciliter le travail de "
     "présentation du service PALC à ces derniers.", []),
]


@pytest.mark.parametrize(("sentence", "expected"), NEEDS)
def test_classify_need(builder: ModuleType, sentence: str, expected: list[str]) -> None:
    assert builder.classify_need(sentence) == expected


def test_need_statements_keep_a_list_with_its_heading(builder: ModuleType) -> None:
    besoins = "Il manque une salle:\n- Pouvant contenir 100 personnes\n- Gratuite\nDu bâti\n- de bénévoles\n"
    assert builder.need_statements(besoins) == [
        "Il manque une salle: - Pouvant contenir 100 personnes - Gratuite",
        "Du bâti",
        "de bénévoles",
    ]


def test_text_helpers(builder: ModuleType) -> None:
    assert builder.slugify("Créer une ferme maraîchère en permaculture", 30) == "creer_une_ferme_maraichere_en"
    taken: set[str] = set()
    assert [builder.slugify("Jardin partagé", 30, taken) for _ in range(2)] == ["jardin_partage", "jardin_partage_2"]
    assert builder.fix_mojibake("De Clermont Ã  Chantilly, prÃªt") == "De Clermont à Chantilly, prêt"
    assert builder.plain_text("**Bold** [[http://x.org un bal]]<h2>T</h2>appeler au 06.14.62.04.27") == (
        "Bold un bal\nT\nappeler au [téléphone masqué]"
    )
    long = "Une phrase. " * 80
    assert len(builder.summary_text(long)) <= 600 and builder.summary_text(long).endswith(".")
    assert builder.utc("2018-02-19 12:39:40") == "2018-02-19T11:39:40Z"  # naive: Paris time
    assert builder.utc("2020-02-29") == "2020-02-29T00:00:00Z"
    assert builder.themes_of("Jardin partagé et compostage") == [
        VOCAB + "themes/community_gardens",
        VOCAB + "themes/composting",
    ]


@needs_data
def test_need_sentences_are_real(builder: ModuleType) -> None:
    """The sentences of NEEDS are in the Colibris files (the first one shortened)."""
    texts = []
    for area in ("pays-creillois", "compiegnois"):
        raw = (DATA_DIR / f"colibris-projets-{area}.json").read_text(encoding="utf-8")
        texts += [" ".join(builder.plain_text(p["content"]).split()) for p in json.loads(builder.fix_mojibake(raw))]
    corpus = "\n".join(texts)
    for sentence, _ in NEEDS[1:]:
        assert " ".join(sentence.split()) in corpus, sentence


@needs_data
def test_most_besoins_sections_yield_a_need(builder: ModuleType) -> None:
    sections = []
    for area in ("pays-creillois", "compiegnois"):
        raw = (DATA_DIR / f"colibris-projets-{area}.json").read_text(encoding="utf-8")
        sections += [builder.sections(p["content"]).get("besoins") for p in json.loads(builder.fix_mojibake(raw))]
    besoins = [s for s in sections if s is not None]
    assert len(besoins) == 29
    classified = [s for s in besoins if any(builder.classify_need(st) for st in builder.need_statements(s))]
    assert len(classified) >= 20


@needs_data
def test_committed_file_is_the_builder_output(builder: ModuleType, territory: dict[str, Any]) -> None:
    """Rebuilding gives the committed file, twice: rerun scripts/build_demo.py after changing it."""
    first, second = builder.build(DATA_DIR), builder.build(DATA_DIR)
    assert first == second
    assert first == territory
