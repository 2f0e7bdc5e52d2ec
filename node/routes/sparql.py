"""/sparql over HTTP: the SPARQL 1.1 Protocol (GET, form POST, direct POST), the service
description, and a query page for browsers. What a query may do is decided in node/sparql/."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from node.errors import BadRequest, UnsupportedMediaType
from node.keys import CONFIG, INDEX, SPARQL
from node.routes.publish import render_page
from node.sparql.description import service_description
from node.sparql.endpoint import Endpoint
from node.sparql.errors import EndpointBusy, UpdateRefused
from node.sparql.evaluate import Answer, QueryRequest, named_graphs
from node.sparql.results import FORMAT_NAMES, GRAPH_MEDIA, PREFIXES, RESULT_MEDIA, choose_format

FORM = "application/x-www-form-urlencoded"
DIRECT = "application/sparql-query"
UPDATE = "application/sparql-update"
#: Rows shown on the page; the other formats carry every row.
PAGE_ROWS = 1000

_HEAD = "\n".join(f"PREFIX {p}: <{PREFIXES[p]}>" for p in ("as", "pair", "osc", "vf", "skos", "dcterms"))
#: The page's examples (title, query); tests run each against the demo territory.
EXAMPLES: list[tuple[str, str]] = [
    ("Initiatives par thème", _HEAD + """
SELECT ?theme ?label (COUNT(DISTINCT ?initiative) AS ?initiatives) WHERE {
  ?initiative a as:Organization ; pair:hasTopic ?theme .
  OPTIONAL { ?theme skos:prefLabel ?label FILTER(LANG(?label) = "fr") }
}
GROUP BY ?theme ?label
ORDER BY DESC(?initiatives)"""),
    ("Initiatives par commune", _HEAD + """
PREFIX geo: <http://rdf.insee.fr/def/geo#>
SELECT ?code ?commune (COUNT(DISTINCT ?initiative) AS ?initiatives) WHERE {
  ?initiative a as:Organization ; as:location ?place .
  ?place geo:codeINSEE ?code .
  OPTIONAL { ?place pair:hasPostalAddress/pair:addressLocality ?commune }
}
GROUP BY ?code ?commune
ORDER BY DESC(?initiatives)"""),
    ("Événements d'un mois (janvier 2021 dans la démo)", _HEAD + """
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
# Le mois prochain : FILTER(?start >= NOW() && ?start < NOW() + "P1M"^^xsd:yearMonthDuration)
SELECT ?event ?name ?start WHERE {
  ?event a as:Event ; as:name ?name ; as:startTime ?start .
  FILTER(?start >= "2021-01-01T00:00:00Z"^^xsd:dateTime && ?start < "2021-02-01T00:00:00Z"^^xsd:dateTime)
}
ORDER BY ?start"""),
    ("Besoins ouverts par catégorie", _HEAD + """
SELECT ?category ?label (COUNT(DISTINCT ?need) AS ?needs) WHERE {
  ?need vf:purpose "request" ; vf:publishes/vf:resourceClassifiedAs ?category .
  OPTIONAL { ?need as:endTime ?end }
  FILTER(!BOUND(?end) || ?end > NOW())
  OPTIONAL { ?category skos:prefLabel ?label FILTER(LANG(?label) = "fr") }
}
GROUP BY ?category ?label
ORDER BY DESC(?needs)"""),
    ("Qui est partenaire de qui", _HEAD + """
SELECT ?a ?nameA ?b ?nameB WHERE {
  ?a pair:partnerOf ?b .
  ?a as:name ?nameA .
  ?b as:name ?nameB .
  FILTER(STR(?a) < STR(?b))
}
ORDER BY ?nameA"""),
    ("D'où vient chaque fait : graphe d'origine et licence", _HEAD + """
PREFIX prov: <http://www.w3.org/ns/prov#>
SELECT ?initiative ?name ?graph ?source ?license WHERE {
  GRAPH ?graph { ?initiative a as:Organization ; as:name ?name }
  OPTIONAL { ?graph prov:wasAttributedTo ?source }
  OPTIONAL { ?graph dcterms:license ?license }
}
ORDER BY ?name
LIMIT 100"""),
]  # fmt: skip


def _single(params: MultiDictProxy[str] | MultiDict[str], name: str) -> str | None:
    values = params.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{len(values)} `{name}` parameters: the protocol takes exactly one")
    return values[0] if values else None


def _graphs(params: MultiDictProxy[str] | MultiDict[str], name: str) -> tuple[str, ...]:
    graphs = tuple(params.getall(name, []))
    for graph in graphs:
        parts = urllib.parse.urlsplit(graph)
        if not parts.scheme or any(c in graph for c in '<>"{}|^`\\ '):
            raise BadRequest(f"{name}={graph!r} is not an absolute IRI")
    return graphs


def _utf8(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 (byte {exc.start}): the protocol requires UTF-8") from exc


def _charset_ok(request: web.Request) -> None:
    charset = request.charset
    if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise BadRequest(f"charset={charset}: the protocol requires UTF-8")


async def _params(request: web.Request) -> tuple[MultiDict[str], str | None]:
    """The protocol parameters (URL and form body together) and the query, whichever way it came."""
    params: MultiDict[str] = MultiDict(request.query)
    if request.method == "GET":
        if "update" in params:
            raise UpdateRefused("this endpoint is read-only: SPARQL Update is refused (and never over GET)")
        return params, _single(params, "query")
    media = request.content_type.lower()
    if media not in (FORM, DIRECT, UPDATE):
        raise UnsupportedMediaType(
            f"a SPARQL query is POSTed as {FORM} (query=...) or as {DIRECT}, not {request.content_type}"
        )
    _charset_ok(request)
    body = await request.read()
    if media == UPDATE:
        raise UpdateRefused("this endpoint is read-only: SPARQL Update is refused")
    if media == DIRECT:
        if "query" in params:
            raise BadRequest(f"a {DIRECT} body carries the query: a `query` parameter as well is ambiguous")
        return params, _utf8(body, "the query")
    text = _utf8(body, "the form body")
    try:
        fields = urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest("a form field is not UTF-8 once percent-decoded: the protocol requires UTF-8") from exc
    for name, value in fields:
        params.add(name, value)
    if "update" in params:
        raise UpdateRefused("this endpoint is read-only: SPARQL Update is refused")
    return params, _single(params, "query")


async def sparql_handler(request: web.Request) -> web.StreamResponse:
    params, query = await _params(request)
    fmt = _single(params, "format")
    accept = request.headers.get("Accept")
    if query is None:
        if request.method == "POST":
            raise BadRequest("no query: send `query=` (form) or a application/sparql-query body")
        return await _description(request, fmt, accept)
    if not query.strip():
        raise BadRequest("the query is empty")
    sparql = QueryRequest(query, _graphs(params, "default-graph-uri"), _graphs(params, "named-graph-uri"),
                          fmt, accept)  # fmt: skip
    try:
        answer = await request.app[SPARQL].answer(request.app[INDEX], sparql)
    except EndpointBusy as exc:
        body = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
        return web.json_response(body, status=exc.status, content_type="application/problem+json",
                                 headers={"Retry-After": str(max(1, round(exc.retry_after)))})  # fmt: skip
    if answer.format == "html":
        return _page(request, query, answer)
    return web.Response(body=answer.body, headers={"Content-Type": f"{answer.media}; charset=utf-8",
                                                   "Vary": "Accept"})  # fmt: skip


async def _description(request: web.Request, fmt: str | None, accept: str | None) -> web.Response:
    """No query: the service description in RDF, or the query page for a browser."""
    chosen = choose_format("graph", fmt, accept)
    if chosen == "html":
        return _page(request, EXAMPLES[0][1], None)
    graphs = {request.app[CONFIG].graph_iri, *await asyncio.to_thread(named_graphs, request.app[INDEX])}
    if chosen == "nquads":
        chosen = "ntriples"
    body = service_description(request.app[CONFIG], graphs, chosen)
    media = {"turtle": "text/turtle", "ntriples": "application/n-triples", "jsonld": "application/ld+json",
             "rdfxml": "application/rdf+xml"}[chosen]  # fmt: skip
    return web.Response(body=body, headers={"Content-Type": f"{media}; charset=utf-8", "Vary": "Accept"})


def _page(request: web.Request, query: str, answer: Answer | None) -> web.Response:
    text = None
    if answer is not None and answer.kind == "graph":
        text = answer.body.decode("utf-8", "replace")
    return render_page(
        request, "sparql.html", title="Interroger les données (SPARQL)", query=query, answer=answer,
        rows=answer.rows[:PAGE_ROWS] if answer else [], truncated=bool(answer and len(answer.rows) > PAGE_ROWS),
        text=text, examples=[(title, urllib.parse.quote(q)) for title, q in EXAMPLES],
        limits=request.app[SPARQL].limits,
    )  # fmt: skip


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entry of /sparql (node.routes.openapi adds it); docs/sparql.md is the full contract."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    media = [m for table in (RESULT_MEDIA, GRAPH_MEDIA) for f, ms in table.items() for m in ms[:1]]
    graphs = {"type": "array", "items": {"type": "string", "format": "iri"}}
    params = [
        {"name": "query", "in": "query", "schema": {"type": "string"},
         "description": "a SPARQL 1.1 query; without it, the service description (or the query page)"},
        {"name": "default-graph-uri", "in": "query", "schema": graphs, "style": "form", "explode": True},
        {"name": "named-graph-uri", "in": "query", "schema": graphs, "style": "form", "explode": True},
        {"name": "format", "in": "query", "schema": {"type": "string", "enum": sorted(
            {n for names in FORMAT_NAMES.values() for n in names})}, "description": "wins over Accept"},
    ]
    responses = {
        "200": {"description": "Results (SELECT, ASK), a graph (CONSTRUCT, DESCRIBE) or the service description",
                "content": {m: {} for m in dict.fromkeys(media)}},
        "400": {"description": "Malformed query (with its position), SERVICE, FROM an unknown graph, "
                "two queries, not UTF-8", "content": problem},
        "403": {"description": "SPARQL Update: the endpoint is read-only", "content": problem},
        "406": {"description": "No acceptable format for this query", "content": problem},
        "415": {"description": "POST body neither form nor application/sparql-query", "content": problem},
        "422": {"description": "More results than the node gives at once", "content": problem},
        "503": {"description": "Time limit reached, or every query slot busy (Retry-After)", "content": problem},
    }
    form = {"type": "object", "required": ["query"], "properties": {"query": {"type": "string"},
            "default-graph-uri": graphs, "named-graph-uri": graphs, "format": {"type": "string"}}}
    body = {"required": True, "content": {FORM: {"schema": form}, DIRECT: {"schema": {"type": "string"}}}}
    return {"/sparql": {
        "get": {"summary": "SPARQL 1.1 query over every graph the node holds (docs/sparql.md)",
                "operationId": "sparql_get", "parameters": params, "responses": responses},
        "post": {"summary": "SPARQL 1.1 query, as a form or an application/sparql-query body",
                 "operationId": "sparql_post", "parameters": params[1:], "requestBody": body,
                 "responses": responses},
    }}  # fmt: skip


async def _drain(app: web.Application) -> AsyncIterator[None]:
    yield
    # Before the store closes: children killed and reaped, a remote store's threads awaited.
    await app[SPARQL].drain(app[CONFIG].sparql_timeout_seconds)


async def _stop(app: web.Application) -> None:
    app[SPARQL].stop()  # at the start of shutdown: running queries end now, not at their deadline


def add_routes(app: web.Application) -> None:
    app[SPARQL] = Endpoint(app[CONFIG])
    app.on_shutdown.append(_stop)
    app.cleanup_ctx.append(_drain)
    app.router.add_get("/sparql", sparql_handler)
    app.router.add_post("/sparql", sparql_handler)
