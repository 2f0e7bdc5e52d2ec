"""Records as a client would send them (relative IRIs resolve against the node's base URL)."""

from __future__ import annotations

from typing import Any

THEMES = "https://w3id.org/oscartes/vocab/themes/"
NEEDS = "https://w3id.org/oscartes/vocab/needs/"
LEGAL = "https://w3id.org/oscartes/vocab/legal-forms/"


def initiative(slug: str = "repair_cafe_massy", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"initiatives/{slug}",
        "type": ["Organization", "pair:Organization", "essglobal:SSEInitiative"],
        "name": "Repair Café de Massy",
        "summary": "Un samedi par mois, des bénévoles réparent avec vous appareils et vêtements.",
        "pair:homePage": "https://repaircafe-massy.example/",
        "pair:hasTopic": [THEMES + "repair"],
        "essglobal:legalForm": LEGAL + "9220",
        "schema:identifier": [{"type": "PropertyValue", "propertyID": "SIREN", "value": "732829320"}],
        "location": {
            "type": "Place",
            "name": "Maison des associations",
            "latitude": 48.7309,
            "longitude": 2.2713,
            "igeo:codeINSEE": "91377",
            "address": {"type": "PostalAddress", "streetAddress": "1 rue de la Paix", "postalCode": "91300",
                        "addressLocality": "Massy", "addressCountry": "FR"},  # fmt: skip
        },
        "schema:openingHours": "Sa 14:00-18:00",
        "pair:e-mail": "benevole@repaircafe-massy.example",
        "published": "2024-03-01T10:00:00Z",
    }
    doc.update(extra)
    return doc


def event(slug: str = "repair_cafe_decembre", owner: str = "initiatives/repair_cafe_massy",
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    doc: dict[str, Any] = {
        "id": f"events/{slug}",
        "type": ["Event", "pair:Event"],
        "name": "Repair Café de décembre",
        "content": "Apportez vos objets en panne.",
        "startTime": "2025-12-13T14:00:00+01:00",
        "endTime": "2025-12-13T18:00:00+01:00",
        "timezone": "Europe/Paris",
        "location": [
            {"type": "Place", "name": "Maison des associations", "latitude": 48.7309, "longitude": 2.2713},
            {"type": "VirtualLocation", "url": "https://visio.example/repair"},
        ],
        "attributedTo": owner,
        "organizers": [owner],
        "pair:hasTopic": [THEMES + "repair"],
    }
    doc.update(extra)
    return doc


def proposal(collection: str = "needs", slug: str = "benevoles_reparateurs",
             owner: str = "initiatives/repair_cafe_massy", category: str = "volunteers",
             **extra: Any) -> dict[str, Any]:  # fmt: skip
    doc: dict[str, Any] = {
        "id": f"{collection}/{slug}",
        "type": ["Note", "Proposal"],
        "purpose": "request" if collection == "needs" else "offer",
        "name": "Bénévoles réparateurs",
        "content": "Nous cherchons des bénévoles qui savent souder.",
        "attributedTo": owner,
        "endTime": "2026-03-01T00:00:00Z",
        "publishes": {"type": "Intent", "resourceClassifiedAs": [NEEDS + category],
                      "resourceQuantity": {"hasUnit": "http://www.ontology-of-units-of-measure.org/resource/om-2/one",
                                           "hasNumericalValue": 2}},  # fmt: skip
        "pair:hasTopic": [THEMES + "repair"],
    }
    doc.update(extra)
    return doc


def resource(slug: str = "guide_repair_cafe", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"resources/{slug}",
        "type": ["Document", "pair:Document"],
        "name": "Guide pour lancer un Repair Café",
        "summary": "Le guide pas à pas.",
        "url": "https://example.org/guide.pdf",
        "attributedTo": "initiatives/repair_cafe_massy",
        "pair:hasTopic": [THEMES + "repair"],
    }
    doc.update(extra)
    return doc


def place(slug: str = "tiers_lieu_massy", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"places/{slug}",
        "type": ["Place", "pair:Place"],
        "name": "Tiers-lieu de Massy",
        "summary": "Un lieu partagé.",
        "latitude": 48.73,
        "longitude": 2.27,
        "igeo:codeINSEE": "91377",
        "address": {"type": "PostalAddress", "streetAddress": "2 place de France", "postalCode": "91300",
                    "addressLocality": "Massy", "addressCountry": "FR"},  # fmt: skip
        "schema:openingHours": "Mo-Fr 09:00-18:00",
    }
    doc.update(extra)
    return doc
