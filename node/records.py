"""The node's records: plain frozen values, the same for every storage and format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Kind = Literal["initiative", "event", "need", "offer", "resource", "place"]

#: URL segment of each kind's collection (also its API path).
COLLECTIONS: dict[str, Kind] = {
    "initiatives": "initiative",
    "events": "event",
    "needs": "need",
    "offers": "offer",
    "resources": "resource",
    "places": "place",
}
COLLECTION_OF: dict[Kind, str] = {kind: coll for coll, kind in COLLECTIONS.items()}
#: What the pages, feeds and statistics call each kind.
KIND_LABELS: dict[str, str] = {"initiative": "Initiative", "event": "Événement", "need": "Besoin",
                               "offer": "Offre", "resource": "Ressource", "place": "Lieu"}  # fmt: skip

IDENTIFIER_SCHEMES = ("SIREN", "SIRET", "RNA")
EVENT_STATUSES = ("EventScheduled", "EventCancelled", "EventPostponed", "EventMovedOnline")


@dataclass(frozen=True)
class Address:
    street: str = ""
    postal_code: str = ""
    locality: str = ""
    country: str = ""


@dataclass(frozen=True)
class Location:
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    insee: str = ""
    address: Address | None = None


@dataclass(frozen=True)
class Identifier:
    scheme: str  # one of IDENTIFIER_SCHEMES
    value: str


@dataclass(frozen=True)
class Record:
    """One directory entry. Fields that do not apply to a kind stay empty."""

    kind: Kind
    iri: str
    slug: str
    name: str
    published: datetime
    updated: datetime
    description: str = ""
    #: initiative: "organization" or "project"
    subtype: str = ""
    themes: tuple[str, ...] = ()
    homepage: str = ""
    legal_form: str = ""
    identifiers: tuple[Identifier, ...] = ()
    location: Location | None = None
    online_url: str = ""
    opening_hours: str = ""
    email: str = ""
    email_public: bool = False
    #: the initiative's actor asks its host before accepting a follower
    manually_approves: bool = False
    phone: str = ""
    partners: tuple[str, ...] = ()
    involves: tuple[str, ...] = ()
    cooperation_stage: str = ""
    icon: str = ""
    attributed_to: str = ""
    organizers: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    timezone: str = ""
    event_status: str = ""
    #: events: an external page; resources: the document itself
    url: str = ""
    category: str = ""
    quantity: float | None = None
    license: str = ""


@dataclass(frozen=True)
class ActorView:
    """What makes an initiative's record an ActivityPub actor too."""

    public_pem: str
    shared_inbox: str
    manually_approves: bool = False


@dataclass(frozen=True)
class Links:
    """What the node adds to a record from elsewhere: other records' links, its actor keys."""

    needs: tuple[str, ...] = ()
    offers: tuple[str, ...] = ()
    actor: ActorView | None = None


@dataclass(frozen=True)
class Tombstone:
    iri: str
    kind: Kind
    deleted: datetime


@dataclass(frozen=True)
class Stored:
    """A record as the store holds it: the record and its renderings, with a version for ETags."""

    id: int
    record: Record
    doc: str  # the public AS2 document, JSON text
    ntriples: str
    version: int
    deleted: datetime | None = None
    private: dict[str, str] = field(default_factory=dict)
