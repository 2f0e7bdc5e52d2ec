"""The node's dataset for other nodes and researchers: its VoID description, the change stream
followers copy it through (bootstrap and reconciliation), and a dated N-Quads dump."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from node.config import Config
from node.convert.as2 import actor_contexts, tombstone_to_as2
from node.convert.common import fmt_datetime, parse_datetime
from node.convert.rdf import serialize
from node.errors import BadRequest
from node.exporter import chunks
from node.keys import CONFIG, ENGINE
from node.negotiate import MEDIA, Format, best
from node.records import Tombstone
from node.routes import publish
from node.routes.publish import wanted
from node.sparql.description import endpoint_url
from node.storage import repo
from node.storage.tables import origins
from vocab.jsonld import to_nquads
from vocab.loader import make_document_loader

AS2_JSON = 'application/activity+json; charset=utf-8'
VOID_CONTEXT = {
    "void": "http://rdfs.org/ns/void#", "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#", "osc": "https://w3id.org/oscartes/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#", "foaf": "http://xmlns.com/foaf/0.1/",
    "dcat": "http://www.w3.org/ns/dcat#",
}  # fmt: skip
CHANGES_MAX = 500
VOID_FORMATS: tuple[Format, ...] = ("jsonld", "turtle", "ntriples", "nquads", "trig", "rdfxml")
HOME_MEDIA: dict[Format, tuple[str, ...]] = {"html": ("text/html", "application/xhtml+xml")}
HOME_MEDIA |= {f: (MEDIA[f],) for f in VOID_FORMATS}
HOME_WILDCARDS: tuple[Format, ...] = ("html",)


def changes_url(config: Config) -> str:
    return f"{config.graph_iri}/changes"


def dump_url(config: Config) -> str:
    return f"{config.graph_iri}.nq"


def decode_position(cursor: str) -> tuple[datetime, int]:
    try:
        return repo.decode_cursor(cursor)
    except ValueError as exc:
        raise BadRequest(f"after={cursor!r} is not a cursor this node gave") from exc


def _dated(value: datetime | None) -> dict[str, str] | None:
    return {"@value": fmt_datetime(value), "@type": "xsd:dateTime"} if value else None


def void_doc(config: Config, modified: datetime | None, subsets: list[Any]) -> dict[str, Any]:
    """VoID and DCAT: what the dataset is, its licence, where to copy it from, and the
    graphs of the other origins this node holds (with where and when they came from)."""
    doc: dict[str, Any] = {
        "@context": VOID_CONTEXT, "@id": config.graph_iri, "@type": ["void:Dataset", "dcat:Dataset", "prov:Entity"],
        "dcterms:title": config.node_name, "dcterms:license": {"@id": config.license},
        "dcterms:publisher": {"@id": f"{config.base_url}/actor"},
        "void:dataDump": {"@id": dump_url(config)}, "osc:changes": {"@id": changes_url(config)},
        "void:uriSpace": f"{config.base_url}/", "foaf:homepage": {"@id": f"{config.base_url}/"},
        "void:vocabulary": [{"@id": v} for v in ("https://www.w3.org/ns/activitystreams#",
                                                  "http://virtual-assembly.org/ontologies/pair#",
                                                  "http://purl.org/essglobal/vocab/",
                                                  "https://w3id.org/valueflows/ont/vf#")],
    }  # fmt: skip
    endpoint = endpoint_url(config)  # SPARQL 1.1 over every graph held
    doc["void:sparqlEndpoint"] = {"@id": endpoint}
    doc["dcat:accessService"] = {
        "@id": f"{endpoint}#service", "@type": "dcat:DataService", "dcat:endpointURL": {"@id": endpoint},
        "dcat:endpointDescription": {"@id": endpoint}, "dcat:servesDataset": {"@id": config.graph_iri},
        "dcterms:conformsTo": {"@id": "https://www.w3.org/TR/sparql11-protocol/"},
    }  # fmt: skip
    if modified:
        doc["dcterms:modified"] = _dated(modified)
    doc["void:subset"] = [
        {"@id": row.graph, "@type": ["void:Dataset", "prov:Entity"], "dcterms:title": row.name,
         "dcterms:license": {"@id": row.license} if row.license else None,
         "prov:wasAttributedTo": {"@id": row.actor}, "dcterms:source": {"@id": row.graph},
         "osc:policy": row.policy, "osc:relayed": row.relay and row.policy == "trusted",
         "prov:generatedAtTime": _dated(row.retrieved_at), "dcterms:modified": _dated(row.modified_at)}
        for row in subsets
    ]  # fmt: skip
    return doc


async def void_handler(request: web.Request) -> web.Response:
    """/dataset, and /.well-known/void where VoID (section 7.2) tells tools to look for it."""
    response = await void_response(request, wanted(request, VOID_FORMATS, default="jsonld"))
    if request.path != "/dataset":
        response.headers["Content-Location"] = request.app[CONFIG].graph_iri
    return response


async def home_handler(request: web.Request) -> web.Response:
    """`/`: the page for browsers (and any Accept that names no RDF format: a home page is not
    refused); the dataset description for an RDF client, as VoID advises for a homepage."""
    accept = request.headers.get("Accept")
    if "format" in request.query:
        fmt = wanted(request, tuple(HOME_MEDIA))
    else:  # `application/*` and `*/*` keep the page; ActivityStreams clients too (no actor here)
        fmt = best(accept, HOME_MEDIA, "html", wildcards=HOME_WILDCARDS) or "html"
        if fmt == "jsonld" and "activitystreams" in (accept or ""):
            fmt = "html"
    response = await (publish.home_page(request) if fmt == "html" else void_response(request, fmt))
    response.headers["Vary"] = "Accept"
    return response


async def void_response(request: web.Request, fmt: Format) -> web.Response:
    config = request.app[CONFIG]
    async with request.app[ENGINE].connect() as conn:
        modified = await repo.last_modified(conn, config.graph_iri)
        shown = origins.c.policy != "blocked"
        subsets = (await conn.execute(select(origins).where(shown).order_by(origins.c.graph))).all()
    doc = _pruned(void_doc(config, modified, list(subsets)))
    if fmt == "jsonld":
        return web.Response(text=json.dumps(doc, ensure_ascii=False), content_type="application/ld+json",
                            charset="utf-8", headers={"Vary": "Accept"})  # fmt: skip
    body = await asyncio.to_thread(_void_rdf, doc, fmt)
    # N-Triples, N-Quads, Turtle and TriG are UTF-8 by definition; RDF/XML declares its encoding.
    return web.Response(body=body, content_type=MEDIA[fmt], charset=None if fmt == "rdfxml" else "utf-8",
                        headers={"Vary": "Accept"})  # fmt: skip


def _void_rdf(doc: dict[str, Any], fmt: Format) -> bytes:
    """The description in the default graph, whatever the format: it is a document about the
    dataset, not part of it."""
    return serialize(to_nquads(doc, loader=make_document_loader({})), fmt, "")


def _pruned(value: Any) -> Any:
    """Drop empty values (an origin without a licence, a dataset never modified)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


async def changes_handler(request: web.Request) -> web.Response:
    """No parameter: the collection. `after=` (a cursor) or `since=` (a date): one page of
    records, oldest change first; deleted records come as Tombstones."""
    config = request.app[CONFIG]
    after, since = request.query.get("after"), request.query.get("since")
    base = changes_url(config)
    context = actor_contexts(config.context_url)  # the items are the AS2 documents, as stored
    if after is None and since is None:
        async with request.app[ENGINE].connect() as conn:
            modified = await repo.last_modified(conn, config.graph_iri)
        doc = {"@context": context, "id": base, "type": "OrderedCollection",
               "summary": "The records of this node in the order they changed, for other nodes to copy.",
               "first": f"{base}?since=1970-01-01T00:00:00Z",
               "updated": fmt_datetime(modified) if modified else None}  # fmt: skip
        return web.Response(text=json.dumps(_pruned(doc)), content_type="application/activity+json")
    position: tuple[datetime, int] | None
    if after is not None:
        position = decode_position(after)
    else:
        try:
            position = (parse_datetime(since or ""), 0)
        except ValueError as exc:
            raise BadRequest(f"since={since!r} is not an RFC 3339 date-time with an offset") from exc
    try:
        limit = min(CHANGES_MAX, max(1, int(request.query.get("limit", config.changes_page_size))))
    except ValueError as exc:
        raise BadRequest("limit must be an integer") from exc
    async with request.app[ENGINE].connect() as conn:
        rows = await repo.changed(conn, config.graph_iri, position, limit)
    items = [_item(row) for row in rows]
    page: dict[str, Any] = {"@context": context, "id": f"{base}?{request.query_string}",
                            "type": "OrderedCollectionPage", "partOf": base}  # fmt: skip
    if rows:  # where the follower resumes: its next reconciliation starts a little before
        page["osc:changedUntil"] = fmt_datetime(rows[-1].changed_at)
    if len(rows) == limit:
        page["next"] = f"{base}?after={repo.encode_cursor(rows[-1].changed_at, rows[-1].id)}&limit={limit}"
    # Items are appended as stored text: no parse and re-dump of every document.
    head = json.dumps(page)[:-1]
    body = head + ', "orderedItems": [' + ", ".join(items) + "]}"
    return web.Response(text=body, content_type="application/activity+json")


def _item(row: Any) -> str:
    if row.deleted_at is not None:
        tombstone = tombstone_to_as2(Tombstone(row.iri, row.kind, row.deleted_at), "")
        tombstone.pop("@context", None)
        tombstone["updated"] = fmt_datetime(row.updated)
        return json.dumps(tombstone)
    doc = json.loads(row.doc)
    doc.pop("@context", None)
    return json.dumps(doc, ensure_ascii=False)


async def dump_handler(request: web.Request) -> web.StreamResponse:
    """This node's own graph as N-Quads, streamed, dated by its last change."""
    config = request.app[CONFIG]
    engine = request.app[ENGINE]
    async with engine.connect() as conn:
        modified = await repo.last_modified(conn, config.graph_iri)
    response = web.StreamResponse(headers={"Content-Type": "application/n-quads; charset=utf-8"})
    if modified:
        response.headers["Last-Modified"] = format_datetime(modified, usegmt=True)
    await response.prepare(request)
    async for chunk in chunks(engine, "nquads", origin=config.graph_iri):
        await response.write(chunk)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home_handler)
    app.router.add_get("/dataset", void_handler)
    app.router.add_get("/.well-known/void", void_handler)
    app.router.add_get("/dataset/changes", changes_handler)
    app.router.add_get("/dataset.nq", dump_handler)
