"""Public, read-only routes: records by content negotiation, collections, context, vocabularies."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pyoxigraph as ox
from aiohttp import web
from sqlalchemy import select

from node import origins
from node.convert.as2 import contexts, linked_data_view, tombstone_to_as2
from node.convert.rdf import collection_to_triples, serialize, write
from node.errors import BadRequest, NotAcceptable
from node.keys import CONFIG, DIRECTORY, ENGINE, TEMPLATES
from node.negotiate import AS2_PROFILE, BY_NAME, MEDIA, RDF_FORMATS, TRIPLE_FORMATS, Format, choose
from node.records import COLLECTIONS, KIND_LABELS, Kind, Record, Stored, Tombstone
from node.routes import matches as match_routes
from node.routes import pages
from node.storage import repo
from node.storage.tables import records
from vocab.loader import own_context

RECORD_FORMATS: tuple[Format, ...] = ("html", *RDF_FORMATS, "json")
COLLECTION_FORMATS = RECORD_FORMATS  # a page of records, in every format a record has
PAGE_MAX = 100
#: ETag names of representations that changed form: a copy cached in the old form is not
#: revalidated. N-Quads (and TriG) of a record were in the dataset's graph; now the default one.
_ETAG_NAMES: dict[Format, str] = {"nquads": "nquads-default"}


def wanted(request: web.Request, offered: tuple[Format, ...], default: Format = "html") -> Format:
    by_name = request.query.get("format")
    if by_name:
        fmt = BY_NAME.get(by_name)
        if fmt is None or fmt not in offered:
            raise NotAcceptable(f"format={by_name!r} is not one of {', '.join(sorted(BY_NAME))}")
        return fmt
    fmt = choose(request.headers.get("Accept"), offered, default)
    if fmt is None:
        served = ", ".join(MEDIA[f] for f in offered)
        raise NotAcceptable(f"cannot serve {request.headers.get('Accept')!r}; available: {served}")
    return fmt


def content_type(fmt: Format, request: web.Request) -> str:
    if fmt == "jsonld" and "activitystreams" in request.headers.get("Accept", ""):
        return AS2_PROFILE
    return MEDIA[fmt] + ("; charset=utf-8" if fmt in ("html", "turtle", "trig") else "")


def linked_data(fmt: Format, request: web.Request) -> bool:
    """Plain `application/ld+json` gets the linked-data view (every type under `type`, schema.org
    in its own namespace); with the ActivityStreams profile it is an AS2 request, answered as
    `application/activity+json` is (one `type` string, schema.org as Mastodon writes it)."""
    return fmt == "jsonld" and "activitystreams" not in request.headers.get("Accept", "")


def alternates(iri: str) -> str:
    return ", ".join(f'<{iri}>; rel="alternate"; type="{MEDIA[f]}"' for f in ("html", *RDF_FORMATS))


def render_page(request: web.Request, template: str, **values: Any) -> web.Response:
    config = request.app[CONFIG]
    html = request.app[TEMPLATES].get_template(template).render(
        base=config.base_url, node_name=config.node_name, license=config.license,
        collections=pages.COLLECTION_LABELS, **values,
    )  # fmt: skip
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def _not_modified(request: web.Request, etag: str, modified: datetime) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        return etag in (m.strip() for m in match.split(",")) or match.strip() == "*"
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            return modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


async def names_of(request: web.Request, iris: list[str]) -> dict[str, str]:
    if not iris:
        return {}
    async with request.app[ENGINE].connect() as conn:
        rows = await conn.execute(select(records.c.iri, records.c.name).where(records.c.iri.in_(set(iris))))
        return {row.iri: row.name for row in rows}


def represent(request: web.Request, stored: Stored, fmt: Format, names: dict[str, str] | None = None,
              matches: tuple[dict[str, Any], str] | None = None) -> web.StreamResponse:  # fmt: skip
    config = request.app[CONFIG]
    record = stored.record
    # A page listing matches changes when other records do: its ETag says which list it shows.
    tag = _ETAG_NAMES.get(fmt, fmt) if fmt != "jsonld" or linked_data(fmt, request) else "jsonld-as2"
    etag = f'"{stored.id}-{stored.version}-{tag}' + (f'-{matches[1]}"' if matches else '"')
    headers = {
        "Vary": "Accept",
        "ETag": etag,
        "Link": alternates(record.iri),
        "Cache-Control": "public, max-age=60",
    }
    if matches is None:
        headers["Last-Modified"] = format_datetime(record.updated, usegmt=True)
    if _not_modified(request, etag, record.updated):
        return web.Response(status=304, headers=headers)
    if fmt == "html":
        doc = json.loads(stored.doc)
        response = render_page(
            request, "record.html", doc=doc, kind=record.kind, kind_label=KIND_LABELS[record.kind],
            description=pages.description(doc), facts=pages.facts(doc, config.base_url, names),
            og_type="article" if record.kind != "initiative" else "profile",
            creator=_creator(record, config.host),
            alternates=[("jsonld", MEDIA["jsonld"]), ("ttl", MEDIA["turtle"])],
            matches=matches[0] if matches else None,
            feeds=[("Correspondances (Atom)", match_routes.feed_url(record.iri))] if record.kind == "initiative"
            else [],
        )  # fmt: skip
    elif fmt in ("as2", "jsonld", "json"):
        body = _linked_data(stored) if linked_data(fmt, request) else stored.doc.encode("utf-8")
        response = web.Response(body=body, content_type="text/plain")
        response.headers["Content-Type"] = content_type(fmt, request)
    else:
        response = web.Response(body=_serialized(stored, fmt))
        response.headers["Content-Type"] = content_type(fmt, request)
    response.headers.update(headers)
    return response


def _creator(record: Record, host: str) -> str:
    """`@name@host` of the initiative behind a page, for Mastodon's author attribution."""
    owner = record.iri if record.kind == "initiative" else record.attributed_to
    prefix = f"{record.iri.rsplit('/', 2)[0]}/initiatives/"
    return f"@{owner.removeprefix(prefix)}@{host}" if owner.startswith(prefix) else ""


_SERIALIZED: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()


def _serialized(stored: Stored, fmt: str) -> bytes:
    """Turtle, N-Quads... of a record version, kept: re-serializing is most of such a GET.

    A record is a document: N-Quads and TriG give its triples in the default graph, where a
    client reading the document looks (the dump and SPARQL give them in the node's graph)."""
    return _kept(stored, fmt, lambda: serialize(stored.ntriples, fmt, ""))


def _linked_data(stored: Stored) -> bytes:
    """The stored AS2 document as the linked-data view, kept as the other serializations are."""
    def view() -> bytes:
        return json.dumps(linked_data_view(json.loads(stored.doc)), ensure_ascii=False).encode("utf-8")

    return _kept(stored, "linked-data", view)


def _kept(stored: Stored, name: str, make: Callable[[], bytes]) -> bytes:
    key = (stored.record.iri, stored.version, name)
    body = _SERIALIZED.get(key)
    if body is None:
        body = _SERIALIZED[key] = make()
        if len(_SERIALIZED) > 2000:
            _SERIALIZED.popitem(last=False)
    return body


def gone(request: web.Request, tombstone: Tombstone, fmt: Format) -> web.Response:
    config = request.app[CONFIG]
    if fmt == "html":
        response = render_page(request, "gone.html", iri=tombstone.iri, deleted=tombstone.deleted.isoformat())
        response.set_status(410)
        return response
    body = json.dumps(tombstone_to_as2(tombstone, config.context_url))
    media = content_type(fmt if fmt in ("as2", "jsonld", "json") else "as2", request)
    return web.Response(status=410, body=body.encode(), headers={"Content-Type": media, "Vary": "Accept"})


async def record_handler(request: web.Request) -> web.StreamResponse:
    kind = COLLECTIONS[request.match_info["collection"]]
    fmt = wanted(request, RECORD_FORMATS)
    stored = await request.app[DIRECTORY].get(kind, request.match_info["slug"], cached=True)
    if stored.deleted is not None:
        return gone(request, Tombstone(stored.record.iri, kind, stored.deleted), fmt)
    names = await names_of(request, pages.linked(json.loads(stored.doc))) if fmt == "html" else None
    matches = await match_routes.page_matches(request, stored) if fmt == "html" and kind in ("need", "offer") else None
    return represent(request, stored, fmt, names, matches)


async def collection_handler(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    collection = request.match_info["collection"]
    kind: Kind = COLLECTIONS[collection]
    fmt = wanted(request, COLLECTION_FORMATS)
    try:
        limit = max(1, min(PAGE_MAX, int(request.query.get("limit", config.page_size))))
    except ValueError:
        limit = config.page_size
    before = request.query.get("before")
    collection_iri = f"{config.base_url}/{collection}"
    async with request.app[ENGINE].connect() as conn:
        total = await repo.count(conn, kind, request.app[CONFIG].graph_iri)
        try:
            items, next_cursor = await repo.page(conn, kind, limit, before, request.app[CONFIG].graph_iri)
        except ValueError as exc:
            raise BadRequest(f"bad cursor {before!r}: {exc}") from exc
    page_iri = f"{collection_iri}?page=true" + (f"&before={before}" if before else "")
    next_iri = f"{collection_iri}?page=true&before={next_cursor}" if next_cursor else None
    if fmt == "html":
        rows = [(s.record.iri, s.record.name, _note(s)) for s in items]
        page = render_page(request, "list.html", title=pages.collection_label(collection), items=rows,
                           intro=f"{total} au total", next=next_iri and next_iri + "&format=html")  # fmt: skip
        page.headers["Vary"] = "Accept"
        return page
    paged = "page" in request.query or bool(before)
    if not paged:
        body: dict[str, Any] = {"@context": contexts(config.context_url), "id": collection_iri,
                                "type": "OrderedCollection", "totalItems": total,
                                "first": f"{collection_iri}?page=true"}  # fmt: skip
    else:
        body = {"@context": contexts(config.context_url), "id": page_iri, "type": "OrderedCollectionPage",
                "partOf": collection_iri, "totalItems": total,
                "orderedItems": [_embedded(s) for s in items]}  # fmt: skip
        if next_iri:
            body["next"] = next_iri
    if fmt in TRIPLE_FORMATS:
        members = items if paged else []
        response = web.Response(body=await asyncio.to_thread(_collection_rdf, body, members, fmt))
    else:
        view = linked_data_view(body) if linked_data(fmt, request) else body
        response = web.json_response(view, content_type="text/plain", dumps=_dumps)
    response.headers["Content-Type"] = content_type(fmt, request)
    response.headers["Vary"] = "Accept"
    response.headers["Link"] = alternates(body["id"])
    return response


def _collection_rdf(body: dict[str, Any], items: list[Stored], fmt: Format) -> bytes:
    """The page as RDF: what its JSON-LD says, each listed record's triples included."""
    triples = [t for s in items for t in ox.parse(s.ntriples.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES)]
    return write(collection_to_triples(body, triples), fmt)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _embedded(stored: Stored) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(stored.doc)
    doc.pop("@context", None)
    return doc


def _note(stored: Stored) -> str:
    record = stored.record
    if record.start:
        return record.start.strftime("%d/%m/%Y")
    loc = record.location
    return loc.address.locality if loc and loc.address else ""


async def context_handler(request: web.Request) -> web.Response:
    return web.json_response(
        own_context(), content_type="application/ld+json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"},
    )  # fmt: skip


async def home_page(request: web.Request) -> web.Response:
    """The HTML home page (node/routes/dataset.py answers `/` to RDF clients)."""
    async with request.app[ENGINE].connect() as conn:
        rows = []
        for collection, title in pages.COLLECTION_LABELS:
            total = await repo.count(conn, COLLECTIONS[collection], request.app[CONFIG].graph_iri)
            rows.append((f"{request.app[CONFIG].base_url}/{collection}", title, f"{total}"))
        network = [(o["actor"].removesuffix("/actor") + "/", o["name"] or o["graph"],
                    f"{o['records']} fiches, copiées le {o['retrieved'][:10]}" if o["retrieved"] else "copie en cours")
                   for o in await origins.listing(conn) if o["policy"] != "blocked"]  # fmt: skip
    return render_page(request, "list.html", title=request.app[CONFIG].node_name, items=rows, network=network,
                       intro="Annuaire de l'économie sociale et solidaire du territoire.", next=None)  # fmt: skip


async def health_handler(request: web.Request) -> web.Response:
    """For monitoring: the database answers; how much index work waits."""
    async with request.app[ENGINE].connect() as conn:
        pending = await repo.pending_index_jobs(conn)
    return web.json_response({"status": "ok", "pendingIndexWork": pending}, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    pattern = "{collection:" + "|".join(COLLECTIONS) + "}"
    app.router.add_get("/ns/context.jsonld", context_handler)
    app.router.add_get("/healthz", health_handler)
    app.router.add_get(f"/{pattern}", collection_handler)
    app.router.add_get(f"/{pattern}/{{slug:[a-z0-9_]{{1,64}}}}", record_handler)
