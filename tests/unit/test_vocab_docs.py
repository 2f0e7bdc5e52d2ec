"""The example documents of docs/data-model.md, made concrete for the tests.

The contract's JSON blocks are parsed from the Markdown itself (so the tests
follow the contract when it changes), ``{base}`` becomes
``https://node.example`` and the ``"..."`` placeholders become realistic
values. Other vocab tests import :func:`example_documents` from here.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from vocab import OM2
from vocab.loader import DocumentLoader, make_document_loader, own_context

BASE = "https://node.example"
CONTEXT_URL = f"{BASE}/ns/context.jsonld"
CONTEXT = ["https://www.w3.org/ns/activitystreams", CONTEXT_URL]
DATA_MODEL = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"
LICENSE = "https://creativecommons.org/licenses/by-sa/4.0/"

_FILLERS: dict[str, Any] = {
    "published": "2024-03-01T10:00:00Z",
    "updated": "2024-05-02T08:30:00Z",
    "name": "Guide pour lancer un Repair Café",
    "pair:label": "Guide pour lancer un Repair Café",
    "summary": "Les étapes pour ouvrir un Repair Café dans sa commune.",
    "pair:description": "Les étapes pour ouvrir un Repair Café dans sa commune.",
    "dcterms:license": LICENSE,
}


def node_loader() -> DocumentLoader:
    return make_document_loader({CONTEXT_URL: own_context()})


def _json_blocks() -> list[dict[str, Any]]:
    text = DATA_MODEL.read_text(encoding="utf-8").replace("{base}", BASE)
    blocks = []
    for raw in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            continue  # the bare '"@context": [...]' fragment
        if isinstance(parsed, dict) and "type" in parsed:
            blocks.append(parsed)
    return blocks


def _reid(node: Any, old: str, new: str) -> Any:
    """Move fragment ids of a nested node from one record IRI to another."""
    if isinstance(node, dict):
        return {k: _reid(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_reid(v, old, new) for v in node]
    if isinstance(node, str) and node.startswith(f"{old}#"):
        return new + node[len(old) :]
    return node


def _fill(node: Any, record: str, place: dict[str, Any], key: str | None = None) -> Any:
    if isinstance(node, list):
        return [_fill(v, record, place, key) for v in node]
    if isinstance(node, dict):
        if "..." in node:  # '"...": "as above"' stands for the initiative's Place
            merged = copy.deepcopy(place)
            merged.update({k: v for k, v in node.items() if k != "..."})
            node = merged
        return {k: _fill(v, record, place, k) for k, v in node.items()}
    if isinstance(node, str):
        if node.startswith("...#"):
            return record + node[3:]
        if node == "...":
            if key == "pair:hasTopic":
                return "https://w3id.org/oscartes/vocab/themes/repair"
            return _FILLERS[key or ""]
        if node.startswith("https://.../"):
            return "https://repaircafe-massy.example/" + node[len("https://.../") :]
    return node


def example_documents() -> dict[str, dict[str, Any]]:
    """Every record kind of the contract, as the node would publish it."""
    blocks = _json_blocks()
    kinds = {"Organization": "initiative", "Event": "event", "Proposal": "need", "Document": "resource"}
    found: dict[str, dict[str, Any]] = {}
    for block in blocks:
        types = block["type"] if isinstance(block["type"], list) else [block["type"]]
        kind = next(kinds[t] for t in types if t in kinds)
        found[kind] = block
    initiative = found["initiative"]
    place = initiative["location"]
    docs: dict[str, dict[str, Any]] = {}
    for kind, block in found.items():
        record = block["id"]
        moved_place = _reid(place, initiative["id"], record)
        doc = _fill(copy.deepcopy(block), record, moved_place)
        doc["@context"] = CONTEXT
        docs[kind] = doc

    # The contract writes hasUnit "one"; the node emits the full OM 2 IRI,
    # because our context coerces hasUnit to @id (see docs/vocabulary.md).
    quantity = docs["need"]["publishes"]["resourceQuantity"]
    if quantity.get("hasUnit") == "one":
        quantity["hasUnit"] = f"{OM2}one"

    offer = copy.deepcopy(docs["need"])
    offer = _reid(offer, offer["id"], f"{BASE}/offers/pret_outillage")
    offer.update(id=f"{BASE}/offers/pret_outillage", purpose="offer", name="Prêt d'outillage")
    offer["publishes"].update(
        action="transfer", resourceClassifiedAs=["https://w3id.org/oscartes/vocab/needs/equipment"]
    )
    offer["publishes"]["resourceConformsTo"] = "https://w3id.org/oscartes/vocab/needs/equipment"
    docs["offer"] = offer

    project = copy.deepcopy(docs["initiative"])
    project = _reid(project, project["id"], f"{BASE}/initiatives/atelier_velo")
    project.update(id=f"{BASE}/initiatives/atelier_velo", type=["Organization", "pair:Project"])
    project.update(preferredUsername="atelier_velo", name="Atelier vélo", url=f"{BASE}/initiatives/atelier_velo")
    project["pair:label"] = "Atelier vélo"
    project["schema:identifier"] = [
        {
            "id": f"{BASE}/initiatives/atelier_velo#id-rna",
            "type": "PropertyValue",
            "propertyID": "RNA",
            "value": "W913000123",
        },
        {
            "id": f"{BASE}/initiatives/atelier_velo#id-siren",
            "type": "PropertyValue",
            "propertyID": "SIREN",
            "value": "123456789",
        },
    ]
    docs["project"] = project

    # "Place (/places/{slug})" is described in prose only: build it from the
    # fields it lists.
    venue = f"{BASE}/places/maison_des_associations"
    place_doc = _reid(copy.deepcopy(place), initiative["id"], venue)
    place_doc.update(
        {
            "@context": CONTEXT,
            "id": venue,
            "pair:label": place_doc["name"],
            "summary": "Salles à prêter aux associations de Massy.",
            "pair:description": "Salles à prêter aux associations de Massy.",
            "schema:openingHours": "Mo-Fr 09:00-19:00",
            "published": _FILLERS["published"],
            "updated": _FILLERS["updated"],
            "dcterms:license": LICENSE,
        }
    )
    docs["place"] = place_doc

    docs["tombstone"] = {
        "@context": CONTEXT,
        "id": f"{BASE}/events/apero_annule",
        "type": "Tombstone",
        "formerType": "Event",
        "deleted": "2025-01-10T09:00:00Z",
    }
    return docs


def test_example_documents_cover_every_record_kind() -> None:
    kinds = sorted(example_documents())
    assert kinds == ["event", "initiative", "need", "offer", "place", "project", "resource", "tombstone"]


def test_no_placeholder_survives() -> None:
    text = json.dumps(example_documents())
    assert "..." not in text
    assert "{base}" not in text


@pytest.mark.parametrize("kind", ["initiative", "event", "need", "resource"])
def test_examples_keep_their_contract_ids(kind: str) -> None:
    doc = example_documents()[kind]
    assert doc["id"].startswith(f"{BASE}/")
    assert doc["@context"] == CONTEXT
