"""GET /stats/counts, /stats/created, /stats/partnerships: JSON by default, CSV (and GraphML for the
partnerships) by extension or Accept. Every unknown parameter, dimension or filter value is a 400
that names it (docs/statistics.md)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from node import origins, stats
from node.communes import REGIONS, communes, departements_of_region
from node.errors import NotAcceptable
from node.keys import CONFIG, ENGINE, INDEX
from node.negotiate import best
from node.places import DEPARTEMENTS
from node.routes.search_params import BadParameter, one, values

MEDIA = {"json": "application/json", "csv": "text/csv", "graphml": "application/graphml+xml"}
FILTERS = ("kind", "departement", "region", "origin")
CREATED_DIMENSIONS = ("kind", "theme", "commune", "departement", "region", "origin")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CACHE = "public, max-age=300"


def _format(request: web.Request, offered: tuple[str, ...]) -> str:
    ext = request.match_info.get("ext")
    if ext:
        if ext not in offered:
            raise NotAcceptable(f".{ext} is not served here; available: {', '.join('.' + f for f in offered)}")
        return ext
    header = request.headers.get("Accept")
    chosen = best(header, {f: (MEDIA[f],) for f in offered}, "json")
    if chosen is None:
        raise NotAcceptable(f"cannot serve {header!r}; available: {', '.join(MEDIA[f] for f in offered)}")
    return chosen


async def _origins(request: web.Request) -> tuple[dict[str, str], dict[str, str]]:
    """(any name of an origin -> its graph, graph -> its name), as /search reads `origin=`."""
    config = request.app[CONFIG]
    async with request.app[ENGINE].connect() as conn:
        return await origins.graphs_by_name(conn, config), await stats.origin_names(conn, config.graph_iri,
                                                                                       config.node_name)


async def _filters(request: web.Request, known: tuple[str, ...]) -> tuple[stats.Filters, dict[str, str]]:
    query = request.query
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise BadParameter(unknown[0], f"unknown parameter; known: {', '.join(known)}")
    kinds = values(query, "kind")
    for kind in kinds:
        if kind not in stats.KINDS:
            raise BadParameter("kind", f"{kind!r} is not one of {', '.join(stats.KINDS)}")
    departements = [d.upper() for d in values(query, "departement")]
    for code in departements:
        if code not in DEPARTEMENTS:
            raise BadParameter("departement", f"{code!r} is not a département code (e.g. 91, 2A, 974)")
    for code in values(query, "region"):
        if code not in REGIONS:
            raise BadParameter("region", f"{code!r} is not an INSEE région code; known: {', '.join(REGIONS)}")
        departements += departements_of_region(code)
    by_key, names = await _origins(request)
    graphs = []
    for value in values(query, "origin"):
        if value == "all":
            continue
        graph = request.app[CONFIG].graph_iri if value == "local" else by_key.get(value.rstrip("/"))
        if graph is None:
            raise BadParameter("origin", f"{value!r} is not followed by this node; give local, all, or a followed "
                                         "node's base URL, host or dataset IRI")  # fmt: skip
        graphs.append(graph)
    months: dict[str, str | None] = {}
    for name in ("from", "to"):
        month = one(query, name) if name in known else None
        if month is not None and not _MONTH.match(month):
            raise BadParameter(name, f"{month!r} is not a month (YYYY-MM)")
        months[name] = month
    if months["from"] and months["to"] and months["from"] > months["to"]:
        raise BadParameter("to", "must not be before from")
    filters = stats.Filters(tuple(sorted(set(kinds))), tuple(sorted(set(departements))), tuple(sorted(set(graphs))),
                            months["from"], months["to"])  # fmt: skip
    return filters, names


def _dimensions(query: MultiMapping[str], allowed: tuple[str, ...], default: str) -> list[str]:
    dims = list(dict.fromkeys(values(query, "by"))) or [default]
    for d in dims:
        if d not in allowed:
            raise BadParameter("by", f"{d!r} is not a dimension; choose among {', '.join(allowed)}")
    return dims


def _filters_json(filters: stats.Filters) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": list(filters.kinds), "departement": list(filters.departements),
                           "origin": list(filters.origins)}  # fmt: skip
    if filters.month_from or filters.month_to:
        out |= {"from": filters.month_from, "to": filters.month_to}
    return out


def _respond(body: bytes, fmt: str, filename: str) -> web.Response:
    headers = {"Cache-Control": CACHE, "Access-Control-Allow-Origin": "*", "Vary": "Accept"}
    if fmt != "json":
        headers["Content-Disposition"] = f'inline; filename="{filename}.{fmt}"'
    response = web.Response(body=body, headers=headers)
    response.content_type = MEDIA[fmt]
    response.charset = "utf-8"
    return response


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


async def _table(request: web.Request, dims: list[str], filters: stats.Filters, names: Mapping[str, str],
                 name: str) -> web.Response:  # fmt: skip
    fmt = _format(request, ("json", "csv"))
    await asyncio.to_thread(communes)  # read once, off the loop
    async with request.app[ENGINE].connect() as conn:
        table = await stats.count(conn, dims, filters, names)
    if fmt == "csv":
        return _respond(stats.csv_bytes(table.columns, table.rows), fmt, name)
    body = {"dimensions": dims, "filters": _filters_json(filters), "records": table.records,
            "columns": list(table.columns), "rows": table.rows}  # fmt: skip
    return _respond(_dumps(body), fmt, name)


async def counts_handler(request: web.Request) -> web.Response:
    """Live records counted by the chosen dimensions (a record counts once per theme it has)."""
    filters, names = await _filters(request, ("by", *FILTERS))
    dims = _dimensions(request.query, stats.DIMENSIONS, "kind")
    return await _table(request, dims, filters, names, "effectifs")


async def created_handler(request: web.Request) -> web.Response:
    """Records created (published) per month, in UTC, by kind and optionally other dimensions."""
    filters, names = await _filters(request, ("by", "from", "to", *FILTERS))
    dims = _dimensions(request.query, CREATED_DIMENSIONS, "kind")
    return await _table(request, ["month", *dims], filters, names, "creations")


async def partnerships_handler(request: web.Request) -> web.Response:
    """The links between structures: declared partnerships and events organised together."""
    fmt = _format(request, ("json", "csv", "graphml"))
    filters, _ = await _filters(request, ("departement", "region", "origin"))
    index = request.app[INDEX]

    async def select_rows(sparql: str) -> list[dict[str, str]]:
        return await asyncio.to_thread(index.select, sparql)

    async with request.app[ENGINE].connect() as conn:
        graph = await stats.partnerships(conn, filters, select_rows)
    if fmt == "graphml":
        return _respond(stats.graphml(graph), fmt, "partenariats")
    if fmt == "csv":
        return _respond(stats.csv_bytes(stats.EDGE_COLUMNS, stats.edge_rows(graph)), fmt, "partenariats")
    return _respond(_dumps({"filters": _filters_json(filters), **stats.graph_json(graph)}), fmt, "partenariats")


def add_routes(app: web.Application) -> None:
    for name, handler, exts in (("counts", counts_handler, "json|csv"), ("created", created_handler, "json|csv"),
                                ("partnerships", partnerships_handler, "json|csv|graphml")):  # fmt: skip
        app.router.add_get(f"/stats/{name}", handler)
        app.router.add_get(f"/stats/{name}.{{ext:{exts}}}", handler)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of the statistics (node.routes.openapi adds them)."""
    many = {"type": "array", "items": {"type": "string"}}

    def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        explode = {"style": "form", "explode": True} if schema.get("type") == "array" else {}
        return {"name": name, "in": "query", "schema": schema, "description": description} | explode

    filters = [param("kind", {"type": "array", "items": {"type": "string", "enum": list(stats.KINDS)}}, "any of"),
               param("departement", many, "département codes"), param("region", many, "INSEE région codes"),
               param("origin", many, "local, all, or a followed node's base URL, host or dataset IRI")]  # fmt: skip
    month = {"type": "string", "pattern": r"^\d{4}-\d{2}$"}
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    table = {"type": "object", "required": ["dimensions", "filters", "records", "columns", "rows"],
             "properties": {"dimensions": many, "filters": {"type": "object"}, "records": {"type": "integer"},
                            "columns": many, "rows": {"type": "array", "items": {"type": "object"}}}}  # fmt: skip
    graph = {"type": "object", "required": ["nodes", "edges"],
             "properties": {"filters": {"type": "object"}, "nodes": {"type": "array", "items": {"type": "object"}},
                            "edges": {"type": "array", "items": {"type": "object"}}}}  # fmt: skip
    operations = {
        "counts": ("Live records counted by the chosen dimensions",
                   [param("by", {"type": "array", "items": {"type": "string", "enum": list(stats.DIMENSIONS)}},
                          "dimensions, in column order (default kind)"), *filters], table),
        "created": ("Records created per month (UTC)",
                    [param("by", {"type": "array", "items": {"type": "string", "enum": list(CREATED_DIMENSIONS)}},
                           "dimensions after the month (default kind)"),
                     param("from", month, "first month, YYYY-MM"), param("to", month, "last month, YYYY-MM"),
                     *filters], table),
        "partnerships": ("Links between structures: declared partnerships and co-organised events",
                         filters[1:], graph),
    }  # fmt: skip
    paths: dict[str, Any] = {}
    for name, (summary, params, schema) in operations.items():
        formats = ("json", "csv", "graphml") if name == "partnerships" else ("json", "csv")
        for ext in ("", *(f".{f}" for f in formats)):
            served = formats if not ext else (ext[1:],)  # without an extension, by Accept
            content = {MEDIA[f]: {"schema": schema} if f == "json" else {} for f in served}
            paths[f"/stats/{name}{ext}"] = {"get": {
                "summary": summary, "operationId": f"stats_{name}{ext.replace('.', '_')}", "parameters": params,
                "responses": {"200": {"description": "The table or graph", "content": content},
                              "400": {"description": "An unknown dimension, filter or parameter", "content": problem},
                              "406": {"description": "Format not available", "content": problem}}}}  # fmt: skip
    return paths
