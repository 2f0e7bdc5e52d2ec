"""Records to compact AS2 documents, built directly (never compacted by pyld: Mastodon
needs arrays to stay arrays and the literal AS2 context URL first).

Two views of a record. The AS2 one (stored, delivered, served as `application/activity+json`)
has one ActivityStreams `type`, a string: clients that compare `type` to a string cannot read
a list. The PAIR, ESSGlobal and ValueFlows types go under `rdf:type`, which our context maps
to the same RDF triples; schema.org terms are written as Mastodon writes them
(`http://schema.org#`), the only form Fedify reads profile fields in. The linked-data view
(`application/ld+json`, and the triples) has every type under `type` and schema.org's own
namespace: `linked_data_view()` derives it from the AS2 one.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from node.convert.common import FEP_8A8E, OM2_ONE, PUBLIC, fmt_datetime, human_when
from node.convert.markup import text_to_html
from node.records import ActorView, Address, Links, Location, Record, Tombstone
from vocab import AS2_CONTEXT, SECURITY_CONTEXT, schemes

Doc = dict[str, Any]

#: Mastodon's spelling of schema.org (its context says `"schema": "http://schema.org#"`), for
#: every schema.org term our documents use. It follows our context, so it wins over it in AS2
#: documents; the node folds both spellings into `http://schema.org/` when it reads.
MASTODON_SCHEMA: dict[str, str] = {
    "schema": "http://schema.org#",
    **{term: f"schema:{term}" for term in (
        "PropertyValue", "propertyID", "value", "address", "PostalAddress", "streetAddress", "postalCode",
        "addressLocality", "addressRegion", "addressCountry", "VirtualLocation")},
}  # fmt: skip
#: The key of the types beyond the one AS2 `type` (our context: `rdf:type`, values as terms).
MORE_TYPES = "rdf:type"

INITIATIVE_TYPES = {
    "organization": ["Organization", "pair:Organization", "essglobal:SSEInitiative"],
    "project": ["Organization", "pair:Project"],
}
KIND_TYPES: dict[str, list[str]] = {
    "event": ["Event", "pair:Event"],
    "need": ["Note", "Proposal"],
    "offer": ["Note", "Proposal"],
    "resource": ["Document", "pair:Document"],
    "place": ["Place", "pair:Place"],
}
FORMER_TYPE = {"initiative": "Organization", "event": "Event", "need": "Note", "offer": "Note",
               "resource": "Document", "place": "Place"}  # fmt: skip


def contexts(context_url: str) -> list[Any]:
    return [AS2_CONTEXT, context_url, MASTODON_SCHEMA]


def actor_contexts(context_url: str) -> list[Any]:
    """Actors and activities: the security context too (`publicKey`), second as Mastodon asks."""
    return [AS2_CONTEXT, SECURITY_CONTEXT, context_url, MASTODON_SCHEMA]


def typed(doc: Doc, types: list[str]) -> Doc:
    """`type` is the first (the ActivityStreams one), a string; the others go under `rdf:type`."""
    doc["type"] = types[0]
    if len(types) > 1:
        doc[MORE_TYPES] = types[1:]
    return doc


def linked_data_view(value: Any) -> Any:
    """The `application/ld+json` view of an AS2 document (or of a page of them): every type under
    `type`, schema.org in its own namespace (our context alone). Documents stored before AS2 had
    one type come out unchanged."""
    if isinstance(value, list):
        return [linked_data_view(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: Doc = {}
    for key, inner in value.items():
        if key == "@context":
            out[key] = [c for c in inner if c != MASTODON_SCHEMA] if isinstance(inner, list) else inner
        elif key == MORE_TYPES:
            continue
        elif key == "type" and MORE_TYPES in value:
            out[key] = [inner, *value[MORE_TYPES]]
        else:
            out[key] = linked_data_view(inner)
    return out


def record_types(record: Record) -> list[str]:
    if record.kind == "initiative":
        return list(INITIATIVE_TYPES[record.subtype or "organization"])
    return list(KIND_TYPES[record.kind])


def _put(doc: Doc, key: str, value: Any) -> None:
    """Absent values and empty lists are left out of published documents."""
    if value is None or value == "" or value == [] or value == ():
        return
    doc[key] = list(value) if isinstance(value, tuple) else value


def address_to_as2(address: Address, node_id: str) -> Doc:
    doc = typed({"id": node_id}, ["PostalAddress", "pair:PostalAddress"])
    for plain, pair, value in (
        ("streetAddress", "pair:addressStreet", address.street),
        ("postalCode", "pair:addressZipCode", address.postal_code),
        ("addressLocality", "pair:addressLocality", address.locality),
        ("addressCountry", "pair:addressCountry", address.country),
    ):
        _put(doc, plain, value)
        _put(doc, pair, value)
    return doc


def place_fields(doc: Doc, location: Location, base_iri: str) -> None:
    """The Place terms (AS2 and their PAIR mirror) of a location node or of a place record."""
    if location.latitude is not None and location.longitude is not None:
        doc["latitude"] = location.latitude
        doc["longitude"] = location.longitude
        doc["pair:latitude"] = location.latitude
        doc["pair:longitude"] = location.longitude
    _put(doc, "igeo:codeINSEE", location.insee)
    if location.address is not None:
        address_iri = f"{base_iri}#address"
        doc["address"] = address_to_as2(location.address, address_iri)
        doc["pair:hasPostalAddress"] = address_iri


def location_to_as2(location: Location, record_iri: str) -> Doc:
    doc = typed({"id": f"{record_iri}#place"}, ["Place", "pair:Place"])
    _put(doc, "name", location.name)
    place_fields(doc, location, record_iri)
    return doc


def address_line(location: Location) -> str:
    parts = [location.name]
    if location.address:
        a = location.address
        parts += [a.street, " ".join(p for p in (a.postal_code, a.locality) if p)]
    return ", ".join(p for p in parts if p)


def event_summary(record: Record) -> str:
    assert record.start is not None
    when = human_when(record.start, record.end, record.timezone)
    where = address_line(record.location) if record.location else ""
    if record.online_url:
        where = f"{where} + en ligne" if where else "en ligne"
    return f"{when} · {where}" if where else when


def _common_head(record: Record, context_url: str) -> Doc:
    return typed({"@context": contexts(context_url), "id": record.iri}, record_types(record))


def hashtags(record: Record) -> list[tuple[str, str]]:
    """(name, href) of the record's themes: Mastodon's hashtags, linking to the node's tag pages."""
    base = record.iri.rsplit("/", 2)[0]
    out = []
    for iri in record.themes:
        concept = schemes.concepts().get(iri)
        if concept is not None:
            out.append((concept.notation, f"{base}/tags/{concept.notation}"))
    return out


def tags(record: Record) -> list[Doc]:
    return [{"id": href, "type": "Hashtag", "href": href, "name": f"#{name}"} for name, href in hashtags(record)]


def _common_tail(doc: Doc, record: Record) -> Doc:
    _put(doc, "pair:hasTopic", record.themes)
    if record.kind in ("event", "need", "offer"):
        _put(doc, "tag", tags(record))
    doc["published"] = fmt_datetime(record.published)
    doc["updated"] = fmt_datetime(record.updated)
    _put(doc, "dcterms:license", record.license)
    return doc


def _labelled(doc: Doc, record: Record, description_key: str) -> None:
    doc["name"] = record.name
    if record.kind != "need" and record.kind != "offer":
        doc["pair:label"] = record.name
    _put(doc, description_key, record.description)
    if record.kind != "need" and record.kind != "offer":
        _put(doc, "pair:description", record.description)


def initiative_to_as2(record: Record, links: Links, context_url: str) -> Doc:
    doc = _common_head(record, context_url)
    doc["preferredUsername"] = record.slug
    _labelled(doc, record, "summary")
    doc["url"] = record.iri
    _put(doc, "pair:homePage", record.homepage)
    _put(doc, "essglobal:legalForm", record.legal_form)
    _put(doc, "schema:identifier", [
        {"id": f"{record.iri}#id-{i.scheme.lower()}", "type": "PropertyValue",
         "propertyID": i.scheme, "value": i.value}
        for i in record.identifiers
    ])  # fmt: skip
    if record.location is not None:
        doc["location"] = location_to_as2(record.location, record.iri)
        doc["pair:hasLocation"] = doc["location"]["id"]
    _put(doc, "schema:openingHours", record.opening_hours)
    if record.email_public:
        _put(doc, "pair:e-mail", record.email)
    _put(doc, "pair:phone", record.phone)
    _put(doc, "pair:partnerOf", record.partners)
    _put(doc, "pair:involves", record.involves)
    _put(doc, "pair:needs", links.needs)
    _put(doc, "pair:offers", links.offers)
    _put(doc, "osc:cooperationStage", record.cooperation_stage)
    if record.icon:
        doc["icon"] = {"id": f"{record.iri}#icon", "type": "Image", "url": record.icon}
    if links.actor is not None:
        actor_fields(doc, record, links.actor, context_url)
    return _common_tail(doc, record)


def actor_fields(doc: Doc, record: Record, actor: ActorView, context_url: str) -> None:
    """The same IRI is the directory entry and the followable account (INTEROP.md's checklist)."""
    iri = record.iri
    doc["@context"] = actor_contexts(context_url)
    doc["inbox"] = f"{iri}/inbox"
    doc["outbox"] = f"{iri}/outbox"
    doc["followers"] = f"{iri}/followers"
    doc["following"] = f"{iri}/following"
    doc["featured"] = f"{iri}/featured"
    doc["endpoints"] = {"id": f"{iri}#endpoints", "sharedInbox": actor.shared_inbox}
    doc["publicKey"] = {"id": f"{iri}#main-key", "owner": iri, "publicKeyPem": actor.public_pem}
    doc["manuallyApprovesFollowers"] = actor.manually_approves
    doc["discoverable"] = True
    doc["indexable"] = True
    doc["attachment"] = profile_fields(record)
    doc["attributionDomains"] = [urlsplit(iri).netloc]


def profile_fields(record: Record) -> list[Doc]:
    """Mastodon's profile fields: a PropertyValue array (always a list, even of one)."""
    fields: list[tuple[str, str, str]] = []
    if record.location is not None and (line := address_line(record.location)):
        fields.append(("address", "Adresse", html.escape(line)))
    if record.homepage:
        href = html.escape(record.homepage, quote=True)
        text = html.escape(record.homepage.split("://", 1)[-1].rstrip("/"))
        link = f'<a href="{href}" rel="me nofollow noopener" target="_blank">{text}</a>'
        fields.append(("website", "Site web", link))
    if record.phone:
        fields.append(("phone", "Téléphone", html.escape(record.phone)))
    if record.legal_form and (concept := schemes.concepts().get(record.legal_form)):
        fields.append(("legal-form", "Forme juridique", html.escape(concept.label())))
    for ident in record.identifiers:
        fields.append((f"id-{ident.scheme.lower()}-field", ident.scheme, ident.value))
    return [{"id": f"{record.iri}#field-{key}", "type": "PropertyValue", "name": name, "value": value}
            for key, name, value in fields]  # fmt: skip


def event_to_as2(record: Record, context_url: str) -> Doc:
    assert record.start is not None and record.end is not None
    doc = _common_head(record, context_url)
    doc["name"] = record.name
    doc["pair:label"] = record.name
    doc["summary"] = event_summary(record)
    _put(doc, "content", record.description)
    _put(doc, "pair:description", record.description)
    doc["to"] = [PUBLIC]
    doc["startTime"] = doc["pair:startDate"] = fmt_datetime(record.start)
    doc["endTime"] = doc["pair:endDate"] = fmt_datetime(record.end)
    _put(doc, "timezone", record.timezone)
    _put(doc, "eventStatus", FEP_8A8E + record.event_status if record.event_status else "")
    places: list[Doc] = []
    if record.location is not None:
        places.append(location_to_as2(record.location, record.iri))
    if record.online_url:
        places.append({"id": f"{record.iri}#online", "type": "VirtualLocation",
                       "url": record.online_url})  # fmt: skip
    _put(doc, "location", places)
    _put(doc, "attributedTo", record.attributed_to)
    if record.organizers:  # FEP-8a8e: a Collection, not a bare list
        doc["organizers"] = {"id": f"{record.iri}#organizers", "type": "Collection",
                             "items": list(record.organizers)}  # fmt: skip
    _put(doc, "url", record.url)
    return _common_tail(doc, record)


def proposal_to_as2(record: Record, context_url: str, action: str) -> Doc:
    doc = _common_head(record, context_url)
    doc["purpose"] = "request" if record.kind == "need" else "offer"
    doc["to"] = [PUBLIC]
    doc["name"] = record.name
    # Mastodon shows a Note's content in full: readable HTML with the hashtags.
    doc["content"] = text_to_html(f"{record.name}\n\n{record.description}", hashtags(record))
    _put(doc, "attributedTo", record.attributed_to)
    if record.location is not None:
        doc["location"] = location_to_as2(record.location, record.iri)
    if record.end is not None:
        doc["endTime"] = fmt_datetime(record.end)
    intent: Doc = {"id": f"{record.iri}#primary", "type": "Intent", "action": action}
    if record.category:
        intent["resourceClassifiedAs"] = [record.category]
        intent["resourceConformsTo"] = record.category
    if record.quantity is not None:
        # FEP-0837 writes the number as a string (an xsd:decimal lexical form): Fedify insists.
        value = f"{record.quantity:g}"
        intent["resourceQuantity"] = {"id": f"{record.iri}#quantity", "hasUnit": OM2_ONE, "hasNumericalValue": value}
    doc["publishes"] = intent
    return _common_tail(doc, record)


def resource_to_as2(record: Record, context_url: str) -> Doc:
    doc = _common_head(record, context_url)
    _labelled(doc, record, "summary")
    _put(doc, "url", record.url)
    _put(doc, "attributedTo", record.attributed_to)
    return _common_tail(doc, record)


def place_to_as2(record: Record, context_url: str) -> Doc:
    doc = _common_head(record, context_url)
    _labelled(doc, record, "summary")
    if record.location is not None:
        place_fields(doc, record.location, record.iri)
    _put(doc, "schema:openingHours", record.opening_hours)
    return _common_tail(doc, record)


def record_to_as2(record: Record, links: Links, context_url: str, action: str = "") -> Doc:
    """The public document of a record. `action` is the FEP-0837 action of a need/offer."""
    match record.kind:
        case "initiative":
            return initiative_to_as2(record, links, context_url)
        case "event":
            return event_to_as2(record, context_url)
        case "need" | "offer":
            return proposal_to_as2(record, context_url, action)
        case "resource":
            return resource_to_as2(record, context_url)
        case "place":
            return place_to_as2(record, context_url)


def tombstone_to_as2(tombstone: Tombstone, context_url: str) -> Doc:
    return {
        "@context": contexts(context_url),
        "id": tombstone.iri,
        "type": "Tombstone",
        # AS2 makes formerType an @id: a bare "Event" would be a relative IRI (Fedify warns).
        "formerType": AS2_CONTEXT + "#" + FORMER_TYPE[tombstone.kind],
        "deleted": fmt_datetime(tombstone.deleted),
    }
