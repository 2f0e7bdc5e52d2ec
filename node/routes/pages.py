"""What the HTML pages show of a record: readable facts taken from its public document."""

from __future__ import annotations

from typing import Any

from node.records import COLLECTIONS
from vocab import VOCAB_BASE, schemes

COLLECTION_LABELS = [("initiatives", "Initiatives"), ("events", "Agenda"), ("needs", "Besoins"),
                     ("offers", "Offres"), ("resources", "Ressources"), ("places", "Lieux")]  # fmt: skip
Fact = tuple[str, str, str]


def label(iri: str) -> str:
    concept = schemes.concepts().get(iri)
    return concept.label() if concept else iri


def local_url(iri: str, base: str) -> str:
    """Shared concept IRIs (w3id) link to this node's copy of the scheme."""
    return base + "/vocab/" + iri.removeprefix(VOCAB_BASE) if iri.startswith(VOCAB_BASE) else iri


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _place_line(place: dict[str, Any]) -> str:
    address = place.get("address") or {}
    town = " ".join(x for x in (address.get("postalCode", ""), address.get("addressLocality", "")) if x)
    name = place.get("name", "")
    # Imported places are often named by their address: say each part once.
    rest = [p for p in (address.get("streetAddress", ""), town) if p and p not in name]
    return ", ".join(p for p in (name, *rest) if p)


def linked(doc: dict[str, Any]) -> list[str]:
    """The records a page links to by IRI: their names are looked up to show them."""
    keys = ("attributedTo", "pair:partnerOf", "pair:involves", "pair:needs", "pair:offers")
    iris = [iri for key in keys for iri in _list(doc.get(key))]
    return iris + list(_list((doc.get("organizers") or {}).get("items")))


def facts(doc: dict[str, Any], base: str, names: dict[str, str] | None = None) -> list[Fact]:
    """Label, text, link. `names` gives the names of linked records (else their IRIs show)."""
    names = names or {}
    out: list[Fact] = []
    if doc.get("startTime") and not doc.get("summary"):
        out.append(("Quand", f"{doc['startTime']} → {doc.get('endTime', '')}", ""))
    for place in _list(doc.get("location")):
        if place.get("type") == "VirtualLocation":
            out.append(("En ligne", place["url"], place["url"]))
        else:
            out.append(("Où", _place_line(place), ""))
    if "address" in doc:
        out.append(("Adresse", _place_line({"address": doc["address"]}), ""))
    if doc.get("pair:homePage"):
        out.append(("Site web", doc["pair:homePage"], doc["pair:homePage"]))
    if doc.get("url") and doc.get("url") != doc.get("id"):
        out.append(("Lien", doc["url"], doc["url"]))
    for key, title in (("pair:hasTopic", "Thème"), ("essglobal:legalForm", "Forme juridique"),
                       ("osc:cooperationStage", "Étape de coopération")):  # fmt: skip
        for iri in _list(doc.get(key)):
            out.append((title, label(iri), local_url(iri, base)))
    intent = doc.get("publishes") or {}
    for iri in _list(intent.get("resourceClassifiedAs")):
        out.append(("Catégorie", label(iri), local_url(iri, base)))
    for ident in _list(doc.get("schema:identifier")):
        out.append((ident["propertyID"], ident["value"], ""))
    for key, title in (("schema:openingHours", "Horaires"), ("pair:phone", "Téléphone"),
                       ("pair:e-mail", "Courriel")):  # fmt: skip
        if doc.get(key):
            out.append((title, doc[key], f"mailto:{doc[key]}" if key == "pair:e-mail" else ""))
    for iri in _list((doc.get("organizers") or {}).get("items")):
        out.append(("Organisé par", names.get(iri, iri), iri))
    for key, title in (("attributedTo", "Porté par"),
                       ("pair:partnerOf", "Partenaire de"), ("pair:involves", "Implique"),
                       ("pair:needs", "Besoin"), ("pair:offers", "Offre")):  # fmt: skip
        for iri in _list(doc.get(key)):
            out.append((title, names.get(iri, iri), iri))
    if doc.get("endTime") and not doc.get("startTime"):
        out.append(("Jusqu'au", doc["endTime"], ""))
    out.append(("Publié", doc.get("published", ""), ""))
    return out


def description(doc: dict[str, Any]) -> str:
    if doc.get("type") and "Event" in _list(doc["type"]):
        return str(doc.get("content", ""))
    return str(doc.get("summary") or doc.get("content") or "")


def collection_label(collection: str) -> str:
    return dict(COLLECTION_LABELS).get(collection, collection) if collection in COLLECTIONS else collection
