"""Incoming JSON-LD to records, with every refusal listed.

Documents are expanded (offline loader, the node's base URL as base, so `"initiatives/x"`
is a valid reference) and read by predicate IRI, so a client may use our context, its own
prefixes or full IRIs: only the meaning counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from federation.terms import fold_schema, normalise
from node.convert.common import parse_datetime, zone
from node.convert.markup import html_to_text
from node.convert.rdf import AS, PAIR, TERMS, TYPES
from node.errors import FieldError, ValidationFailed
from node.records import (
    COLLECTION_OF,
    EVENT_STATUSES,
    Address,
    Identifier,
    Kind,
    Location,
    Record,
)
from vocab import schemes
from vocab.jsonld import JsonLdSyntaxError, expand
from vocab.loader import DocumentLoader, UnknownContextError, make_document_loader, own_context

OSC = "https://w3id.org/oscartes/ns#"
CANONICAL_CONTEXT = "https://w3id.org/oscartes/ns/context.jsonld"
STATUS_BASES = ("https://w3id.org/fep/8a8e/", "http://schema.org/", "https://schema.org/")
EMAIL_PUBLIC = OSC + "emailPublic"
SLUG_RE = {"initiative": re.compile(r"^[a-z0-9_]{1,30}$")}
OTHER_SLUG_RE = re.compile(r"^[a-z0-9_]{1,60}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INSEE_RE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")
IDENTIFIER_RE = {"SIREN": re.compile(r"^[0-9]{9}$"), "SIRET": re.compile(r"^[0-9]{14}$"),
                 "RNA": re.compile(r"^W[0-9A-Z][0-9]{8}$")}  # fmt: skip
MAX_NAME, MAX_TEXT, MAX_SHORT = 300, 20_000, 500
#: Mirrors and values the node computes: accepted in input (same shape in and out), ignored.
COMPUTED = {PAIR + "label", PAIR + "description", PAIR + "startDate", PAIR + "endDate",
            PAIR + "latitude", PAIR + "longitude", PAIR + "hasLocation", PAIR + "hasPostalAddress",
            PAIR + "addressStreet", PAIR + "addressZipCode", PAIR + "addressLocality",
            PAIR + "addressCountry", PAIR + "needs", PAIR + "offers", AS + "to", AS + "cc", AS + "tag",
            *(TERMS[k][0] for k in ("inbox", "outbox", "followers", "following", "featured", "endpoints", "publicKey",
                                    "discoverable", "indexable", "attachment", "attributionDomains"))}  # fmt: skip
_KEY_OF = {iri: key for key, (iri, _) in TERMS.items()}
_TYPE_OF = {iri: name for name, iri in TYPES.items()}
Node = Mapping[str, Any]


@dataclass(frozen=True)
class ParseContext:
    base_url: str
    context_url: str
    license: str
    now: datetime
    default_timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class Draft:
    """A parsed record before the node gives it an IRI (when the client did not)."""

    record: Record
    requested_slug: str


def key_name(iri: str) -> str:
    return _KEY_OF.get(iri, iri.removeprefix("_:"))


class _Reader:
    """Reads one expanded node, collecting errors instead of stopping at the first."""

    def __init__(self, node: Node, pointer: str, errors: list[FieldError], base: str) -> None:
        self.node, self.pointer, self.errors, self.base = node, pointer, errors, base

    def fail(self, iri: str, detail: str) -> None:
        self.errors.append(FieldError(f"{self.pointer}/{key_name(iri)}", detail))

    def values(self, iri: str) -> list[Any]:
        return list(self.node.get(iri, []))

    def text(self, iri: str, *, limit: int = MAX_TEXT, required: bool = False) -> str:
        values = self.values(iri)
        if not values:
            if required:
                self.fail(iri, "is required")
            return ""
        if len(values) > 1:
            languages = [v for v in values if "@language" in v]
            values = [next((v for v in languages if v["@language"] == "fr"), values[0])]
        raw = values[0].get("@value")
        if not isinstance(raw, str):
            self.fail(iri, "must be a string")
            return ""
        text = raw.strip()
        if required and not text:
            self.fail(iri, "must not be empty")
        if len(text) > limit:
            self.fail(iri, f"is longer than {limit} characters")
        return text

    def iris(self, iri: str) -> list[str]:
        out = []
        for value in self.values(iri):
            ref = value.get("@id") if isinstance(value, dict) else None
            if ref is None and isinstance(value.get("@value"), str):
                ref = value["@value"]
            if not isinstance(ref, str) or not is_http_iri(ref):
                self.fail(iri, f"{ref if isinstance(ref, str) else value!r} is not an absolute http(s) IRI")
                continue
            out.append(ref)
        return out

    def iri(self, iri: str, *, external: bool = False) -> str:
        found = self.iris(iri)
        if len(found) > 1:
            self.fail(iri, "takes one IRI")
        value = found[0] if found else ""
        if external and value.startswith(self.base + "/"):
            # JSON-LD resolves "example.org" against the node's base: almost surely a mistake.
            self.fail(iri, f"must be an absolute URL (https://...), it resolved to {value}")
            return ""
        return value

    def number(self, iri: str) -> float | None:
        values = self.values(iri)
        if not values:
            return None
        raw = values[0].get("@value")
        try:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        except (TypeError, ValueError):
            self.fail(iri, f"{raw!r} is not a number")
            return None

    def when(self, iri: str, *, required: bool = False) -> datetime | None:
        text = self.text(iri, limit=64, required=required)
        if not text:
            return None
        try:
            return parse_datetime(text)
        except ValueError as exc:
            self.fail(iri, f"{text!r} is not an ISO 8601 date-time with offset ({exc})")
            return None

    def flag(self, iri: str) -> bool:
        values = self.values(iri)
        raw: object = values[0].get("@value") if values else False
        if isinstance(raw, bool):
            return raw
        if raw in ("true", "false"):
            return raw == "true"
        self.fail(iri, "must be true or false")
        return False

    def nodes(self, iri: str) -> list[_Reader]:
        out = []
        for i, value in enumerate(self.values(iri)):
            if "@value" in value or set(value) == {"@id"}:
                self.fail(iri, "must be described inline (an object), not a bare value or IRI")
                continue
            out.append(_Reader(value, f"{self.pointer}/{key_name(iri)}/{i}", self.errors, self.base))
        return out

    def types(self) -> set[str]:
        return {_TYPE_OF.get(t, t) for t in self.node.get("@type", [])}

    def unknown_keys(self, allowed: set[str]) -> None:
        for key in self.node:
            if key.startswith("@") or key in allowed or key in COMPUTED:
                continue
            self.errors.append(FieldError(f"{self.pointer}/{key_name(key)}", "unknown property"))


def is_http_iri(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not re.search(r"\s", value)


def _p(key: str) -> str:
    return TERMS[key][0]


def read_location(r: _Reader, *, whole_node: bool = True) -> Location:
    lat, lon = r.number(_p("latitude")), r.number(_p("longitude"))
    if (lat is None) != (lon is None):
        r.fail(_p("latitude"), "latitude and longitude go together")
    if lat is not None and not -90 <= lat <= 90:
        r.fail(_p("latitude"), f"{lat} is outside [-90, 90]")
    if lon is not None and not -180 <= lon <= 180:
        r.fail(_p("longitude"), f"{lon} is outside [-180, 180]")
    insee = r.text(_p("igeo:codeINSEE"), limit=5)
    if insee and not INSEE_RE.match(insee):
        r.fail(_p("igeo:codeINSEE"), f"{insee!r} is not an INSEE commune code (5 characters)")
    address = None
    for a in r.nodes(_p("address"))[:1]:
        postal = a.text(_p("postalCode"), limit=16)
        country = a.text(_p("addressCountry"), limit=64)
        if postal and country.upper() in ("", "FR", "FRANCE") and not re.match(r"^[0-9]{5}$", postal):
            a.fail(_p("postalCode"), f"{postal!r} is not a French postal code (5 digits)")
        address = Address(a.text(_p("streetAddress"), limit=MAX_SHORT), postal,
                          a.text(_p("addressLocality"), limit=200), country)  # fmt: skip
        a.unknown_keys({_p(k) for k in ("streetAddress", "postalCode", "addressLocality", "addressCountry")})
    if whole_node:  # a place record's own keys are checked with the record's
        r.unknown_keys({_p(k) for k in ("name", "latitude", "longitude", "igeo:codeINSEE", "address")})
    return Location(r.text(_p("name"), limit=MAX_NAME), lat, lon, insee, address)


def _concept(r: _Reader, key: str, scheme: str, label: str) -> list[str]:
    found = r.iris(_p(key))
    for iri in found:
        if not schemes.in_scheme(iri, scheme):
            r.fail(_p(key), f"{iri} is not a known {label} (see /vocab/{scheme})")
    return found


def _identifiers(r: _Reader) -> tuple[Identifier, ...]:
    out = []
    for node in r.nodes(_p("schema:identifier")):
        scheme = node.text(_p("propertyID"), limit=16, required=True).upper()
        value = re.sub(r"\s", "", node.text(_p("value"), limit=32, required=True))
        pattern = IDENTIFIER_RE.get(scheme)
        if pattern is None:
            node.fail(_p("propertyID"), f"{scheme!r} is not one of {', '.join(IDENTIFIER_RE)}")
        elif not pattern.match(value):
            node.fail(_p("value"), f"{value!r} is not a valid {scheme}")
        elif scheme in ("SIREN", "SIRET") and not luhn_ok(value):
            node.fail(_p("value"), f"{value!r} fails the {scheme} check digit")
        node.unknown_keys({_p("propertyID"), _p("value")})
        out.append(Identifier(scheme, value))
    return tuple(out)


def luhn_ok(digits: str) -> bool:
    """SIREN and SIRET carry a Luhn check digit (La Poste's SIRETs are the known exception)."""
    if digits.startswith("356000000") and len(digits) == 14:
        return True
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


Fields = dict[str, Any]
KindReader = Callable[[_Reader, Fields, ParseContext], set[str]]


def _initiative(r: _Reader, f: Fields, ctx: ParseContext) -> set[str]:
    types = r.types()
    f["subtype"] = "project" if "pair:Project" in types else "organization"
    f["homepage"] = r.iri(_p("pair:homePage"), external=True)
    f["legal_form"] = next(iter(_concept(r, "essglobal:legalForm", "legal-forms", "legal form")), "")
    f["identifiers"] = _identifiers(r)
    f["opening_hours"] = r.text(_p("schema:openingHours"), limit=MAX_SHORT)
    f["email"] = r.text(_p("pair:e-mail"), limit=MAX_SHORT)
    if f["email"] and not EMAIL_RE.match(f["email"]):
        r.fail(_p("pair:e-mail"), f"{f['email']!r} is not an email address")
    f["email_public"] = r.flag(EMAIL_PUBLIC)
    f["manually_approves"] = r.flag(_p("manuallyApprovesFollowers"))
    f["phone"] = r.text(_p("pair:phone"), limit=64)
    f["partners"] = tuple(r.iris(_p("pair:partnerOf")))
    f["involves"] = tuple(r.iris(_p("pair:involves")))
    f["cooperation_stage"] = next(iter(_concept(r, "osc:cooperationStage", "gears", "gear")), "")
    for icon in r.values(_p("icon"))[:1]:
        url_values = icon.get(_p("url"), [])
        f["icon"] = icon.get("@id", "") if not url_values else url_values[0].get("@id", "")
        if not is_http_iri(f["icon"]):
            r.fail(_p("icon"), "must be an Image with an http(s) url")
    locations = r.nodes(_p("location"))
    f["location"] = read_location(locations[0]) if locations else None
    return {_p(k) for k in ("preferredUsername", "summary", "url", "pair:homePage",
            "essglobal:legalForm", "schema:identifier", "schema:openingHours", "pair:e-mail",
            "pair:phone", "pair:partnerOf", "pair:involves", "osc:cooperationStage", "icon",
            "location", "manuallyApprovesFollowers")} | {EMAIL_PUBLIC}  # fmt: skip


def _organizers(r: _Reader) -> list[str]:
    """FEP-8a8e says a Collection of actors; plain IRIs are accepted too."""
    found: list[str] = []
    for value in r.values(_p("organizers")):
        items = value.get(_p("items"))
        if items is None:
            found += _Reader({_p("organizers"): [value]}, r.pointer, r.errors, r.base).iris(_p("organizers"))
        else:
            found += _Reader(value, f"{r.pointer}/organizers", r.errors, r.base).iris(_p("items"))
    return found


def _event(r: _Reader, f: Fields, ctx: ParseContext) -> set[str]:
    f["start"] = r.when(_p("startTime"), required=True)
    f["end"] = r.when(_p("endTime"), required=True)
    if f["start"] and f["end"] and f["end"] < f["start"]:
        r.fail(_p("endTime"), "ends before it starts")
    f["timezone"] = r.text(_p("timezone"), limit=64) or ctx.default_timezone
    if zone(f["timezone"]) is None:
        r.fail(_p("timezone"), f"{f['timezone']!r} is not an IANA time zone")
    status = fold_schema(r.iri(_p("eventStatus")))
    f["event_status"] = status.rsplit("/", 1)[-1] if status else ""
    if status and (not status.startswith(STATUS_BASES) or f["event_status"] not in EVENT_STATUSES):
        r.fail(_p("eventStatus"), f"{status} is not one of FEP-8a8e's {', '.join(EVENT_STATUSES)}")
    for place in r.nodes(_p("location")):
        if "VirtualLocation" in place.types():
            f["online_url"] = place.iri(_p("url"), external=True)
            place.unknown_keys({_p("url"), _p("name")})
        else:
            f["location"] = read_location(place)
    f["organizers"] = tuple(_organizers(r))
    f["url"] = r.iri(_p("url"), external=True)
    return {_p(k) for k in ("startTime", "endTime", "timezone", "eventStatus", "location",
                            "organizers", "url", "summary")}  # fmt: skip


def _proposal(r: _Reader, f: Fields, ctx: ParseContext, kind: Kind) -> set[str]:
    expected = "request" if kind == "need" else "offer"
    purpose = r.text(_p("purpose"), limit=16) or expected
    if purpose != expected:
        r.fail(_p("purpose"), f"a {kind} has purpose {expected!r}, not {purpose!r}")
    f["end"] = r.when(_p("endTime"))
    locations = r.nodes(_p("location"))
    f["location"] = read_location(locations[0]) if locations else None
    intents = r.nodes(_p("publishes"))
    if not intents:
        r.fail(_p("publishes"), "is required: an Intent with resourceClassifiedAs (a need category)")
    for intent in intents[:1]:
        found = intent.iris(_p("resourceClassifiedAs")) or intent.iris(_p("resourceConformsTo"))
        categories = [c for c in found if schemes.in_scheme(c, "needs")]
        if not categories:
            intent.fail(_p("resourceClassifiedAs"), "needs one category of /vocab/needs")
        f["category"] = categories[0] if categories else ""
        for q in intent.nodes(_p("resourceQuantity"))[:1]:
            f["quantity"] = q.number(_p("hasNumericalValue"))
            if f["quantity"] is not None and f["quantity"] <= 0:
                q.fail(_p("hasNumericalValue"), "must be positive")
            q.unknown_keys({_p("hasNumericalValue"), _p("hasUnit")})
        intent.unknown_keys({_p(k) for k in ("action", "resourceClassifiedAs", "resourceConformsTo",
                                             "resourceQuantity")})  # fmt: skip
    return {_p(k) for k in ("purpose", "endTime", "location", "publishes", "content")}


def _resource(r: _Reader, f: Fields, ctx: ParseContext) -> set[str]:
    f["url"] = r.iri(_p("url"), external=True)
    return {_p("url"), _p("summary")}


def _place(r: _Reader, f: Fields, ctx: ParseContext) -> set[str]:
    f["location"] = read_location(r, whole_node=False)
    f["opening_hours"] = r.text(_p("schema:openingHours"), limit=MAX_SHORT)
    return {_p(k) for k in ("summary", "latitude", "longitude", "igeo:codeINSEE", "address",
                            "schema:openingHours")}  # fmt: skip


def expand_input(doc: Any, ctx: ParseContext) -> Node:
    if not isinstance(doc, dict):
        raise ValidationFailed([FieldError("#", "the body must be a JSON object")])
    if "@context" not in doc:
        doc = {"@context": ["https://www.w3.org/ns/activitystreams", ctx.context_url], **doc}
    try:
        nodes = expand(doc, loader=node_loader(ctx.context_url), base=ctx.base_url + "/")
    except UnknownContextError as exc:
        raise ValidationFailed([FieldError("#/@context", str(exc))]) from exc
    except JsonLdSyntaxError as exc:
        raise ValidationFailed([FieldError("#", f"not valid JSON-LD: {exc}")]) from exc
    if len(nodes) != 1:
        raise ValidationFailed([FieldError("#", "the document must describe exactly one record")])
    return nodes[0]


@lru_cache(maxsize=8)
def node_loader(context_url: str) -> DocumentLoader:
    """The offline loader, also answering for this node's context URL and the canonical one."""
    own = own_context()
    return make_document_loader({context_url: own, CANONICAL_CONTEXT: own})


def record_from_jsonld(doc: Any, kind: Kind, ctx: ParseContext, existing: Record | None = None) -> Draft:
    """Parse and check an incoming record. Raises ValidationFailed listing every bad field."""
    return record_from_node(expand_input(doc, ctx), kind, ctx, existing)


def record_from_node(node: Node, kind: Kind, ctx: ParseContext, existing: Record | None = None) -> Draft:
    """Read one expanded JSON-LD node (documents expanded one at a time, or a page at once).
    schema.org's spellings and `rdf:type` properties are folded first (federation/terms.py)."""
    node = normalise(node)
    errors: list[FieldError] = []
    r = _Reader(node, "#", errors, ctx.base_url)
    f: Fields = {}
    f["name"] = r.text(_p("name"), limit=MAX_NAME, required=True)
    # An event's summary is the node's human date line, never its description.
    keys = {"event": ("content",), "need": ("content", "summary"), "offer": ("content", "summary")}
    f["description"] = next((t for k in keys.get(kind, ("summary", "content")) if (t := r.text(_p(k)))), "")
    if kind in ("need", "offer"):  # published as HTML that starts with the name: take the text back
        f["description"] = html_to_text(f["description"]).removeprefix(f["name"]).strip()
    f["themes"] = tuple(_concept(r, "pair:hasTopic", "themes", "theme"))
    f["license"] = r.iri(_p("dcterms:license")) or ctx.license
    if kind != "initiative":
        f["attributed_to"] = r.iri(_p("attributedTo"))
        if kind in ("event", "need", "offer") and not f["attributed_to"]:
            r.fail(_p("attributedTo"), f"a {kind} is attributed to an initiative (its IRI)")
    readers: dict[str, KindReader] = {"initiative": _initiative, "event": _event,
                                      "resource": _resource, "place": _place}  # fmt: skip
    allowed = _proposal(r, f, ctx, kind) if kind in ("need", "offer") else readers[kind](r, f, ctx)
    allowed |= {_p(k) for k in ("name", "pair:hasTopic", "dcterms:license", "published", "updated",
                                "attributedTo", "content", "summary")}  # fmt: skip
    published = r.when(_p("published"))
    updated = r.when(_p("updated"))
    r.unknown_keys(allowed)
    _check_types(r, kind)
    slug = _requested_slug(r, node, kind, ctx, existing)
    if errors:
        raise ValidationFailed(errors)
    if published and published > ctx.now + timedelta(minutes=5):
        raise ValidationFailed([FieldError("#/published", "is in the future")])
    if existing is not None:
        f["published"], f["updated"] = existing.published, ctx.now
        iri, slug = existing.iri, existing.slug
    else:
        f["published"] = published or ctx.now
        f["updated"] = max(updated or f["published"], f["published"])
        iri = f"{ctx.base_url}/{COLLECTION_OF[kind]}/{slug}" if slug else ""
    record = Record(kind=kind, iri=iri, slug=slug, **f)
    return Draft(record, slug)


def _check_types(r: _Reader, kind: Kind) -> None:
    allowed = {
        "initiative": {"Organization", "pair:Organization", "pair:Project", "essglobal:SSEInitiative",
                       AS + "Group"},
        "event": {"Event", "pair:Event"},
        "need": {"Note", "Proposal"},
        "offer": {"Note", "Proposal"},
        "resource": {"Document", "pair:Document", PAIR + "Resource"},
        "place": {"Place", "pair:Place"},
    }[kind]  # fmt: skip
    for t in r.types() - allowed:
        r.errors.append(FieldError("#/type", f"{t} is not a type of {kind} records"))


def _requested_slug(r: _Reader, node: Node, kind: Kind, ctx: ParseContext, existing: Record | None) -> str:
    collection_base = f"{ctx.base_url}/{COLLECTION_OF[kind]}/"
    slug = ""
    record_id = node.get("@id", "")
    if record_id and not record_id.startswith("_:"):
        if existing is not None and record_id != existing.iri:
            r.errors.append(FieldError("#/id", f"is {existing.iri}, it cannot change"))
        elif not record_id.startswith(collection_base):
            r.errors.append(FieldError("#/id", f"must be under {collection_base}"))
        else:
            slug = record_id.removeprefix(collection_base)
    username = r.text(_p("preferredUsername"), limit=64) if kind == "initiative" else ""
    if username and slug and username != slug:
        r.fail(_p("preferredUsername"), f"must equal the IRI's last segment {slug!r}")
    slug = slug or username
    pattern = SLUG_RE.get(kind, OTHER_SLUG_RE)
    if slug and existing is None and not pattern.match(slug):
        r.errors.append(FieldError("#/id", f"{slug!r} must match {pattern.pattern}"))
    return slug

