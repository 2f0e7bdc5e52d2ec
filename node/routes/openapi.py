"""The OpenAPI 3.1 description of the routes, built from the same tables the router uses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.keys import CONFIG
from node.records import COLLECTIONS
from node.routes.matches import openapi_paths as matches_paths
from node.routes.nodes import openapi_paths as nodes_paths
from node.routes.search_params import openapi_paths as search_paths
from node.routes.social import openapi_paths as social_paths
from node.routes.sparql import openapi_paths as sparql_paths
from node.routes.stats import openapi_paths as stats_paths

SLUG = {"name": "slug", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}}  # fmt: skip
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
LD = {"application/ld+json": {"schema": {"$ref": "#/components/schemas/Record"}}}
ERRORS = {
    "400": "Malformed JSON or JSON-LD", "401": "Missing, unknown or revoked token",
    "403": "The token may not touch this record", "404": "No such record",
    "409": "The requested IRI is taken", "410": "The record was deleted",
    "413": "Body larger than the node accepts", "415": "Body is not JSON",
    "422": "Invalid record: every bad field is listed",
}  # fmt: skip


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"description": ERRORS[code], "content": PROBLEM} for code in codes}


def _record_ops(collection: str) -> dict[str, dict[str, Any]]:
    body = {"required": True, "content": {t: {"schema": {"$ref": "#/components/schemas/Record"}}
                                          for t in ("application/json", "application/ld+json")}}  # fmt: skip
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        f"/api/{collection}": {
            "post": {
                "summary": f"Create a record in {collection}", "operationId": f"create_{collection}",
                "security": secured, "requestBody": body,
                "responses": {"201": {"description": "Created", "content": LD,
                                      "headers": {"Location": {"schema": {"type": "string"}},
                                                  "Content-Location": {"schema": {"type": "string"}}}},
                              **_errors("400", "401", "403", "409", "413", "415", "422")},
            },
        },
        f"/api/{collection}/{{slug}}": {
            "parameters": [SLUG],
            "get": {"summary": "Read a record with its private fields", "operationId": f"read_{collection}",
                    "security": secured,
                    "responses": {"200": {"description": "The record", "content": LD},
                                  **_errors("401", "403", "404")}},
            "put": {"summary": "Replace a record", "operationId": f"update_{collection}", "security": secured,
                    "requestBody": body,
                    "responses": {"200": {"description": "Updated", "content": LD},
                                  **_errors("400", "401", "403", "404", "410", "413", "415", "422")}},
            "delete": {"summary": "Delete a record (its IRI then answers 410)",
                       "operationId": f"delete_{collection}", "security": secured,
                       "responses": {"200": {"description": "The Tombstone", "content": LD},
                                     **_errors("401", "403", "404", "410")}},
        },
        f"/{collection}": {
            "get": {"summary": f"Paged {collection}, newest first", "operationId": f"list_{collection}",
                    "parameters": [
                        {"name": "page", "in": "query", "schema": {"type": "string", "enum": ["true"]}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    ],
                    "responses": {"200": {"description": "OrderedCollection or OrderedCollectionPage",
                                          "content": {"application/activity+json": {}, "text/html": {}}}}},
        },
        f"/{collection}/{{slug}}": {
            "parameters": [SLUG],
            "get": {"summary": "A record, by content negotiation", "operationId": f"get_{collection}",
                    "responses": {"200": {"description": "The record",
                                          "content": {m: {} for m in ("text/html", "application/activity+json",
                                                      "application/ld+json", "text/turtle",
                                                      "application/n-triples", "application/n-quads")}},
                                  "304": {"description": "Not modified"},
                                  **_errors("404", "410"), "406": {"description": "Format not available",
                                                                   "content": PROBLEM}}},
        },
    }  # fmt: skip


def openapi_document(base_url: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for collection in COLLECTIONS:
        paths.update(_record_ops(collection))
    paths.update(search_paths())
    paths.update(sparql_paths())
    paths.update(matches_paths())
    paths.update(stats_paths())
    paths.update(social_paths())
    paths.update(nodes_paths())
    paths["/api/openapi.json"] = {"get": {"summary": "This document", "operationId": "openapi",
                                          "responses": {"200": {"description": "OpenAPI 3.1",
                                                                "content": {"application/json": {
                                                                    "schema": {"type": "object"}}}}}}}  # fmt: skip
    paths["/ns/context.jsonld"] = {"get": {"summary": "The node's JSON-LD context", "operationId": "context",
                                           "responses": {"200": {"description": "JSON-LD context",
                                                                 "content": {"application/ld+json": {}}}}}}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "Oscartes node", "version": "1",
                 "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
                 "description": "Authoring API and linked-data publishing of a territory's directory."},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Record": {"type": "object", "description": "A record's JSON-LD, as the node publishes it "
                           "(see docs/data-model.md)", "required": ["name"],
                           "properties": {"name": {"type": "string"}, "type": {}, "id": {"type": "string"}}},
                "Problem": {"type": "object", "required": ["title", "status", "detail"],
                            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                           "status": {"type": "integer"}, "detail": {"type": "string"},
                                           "errors": {"type": "array", "items": {"type": "object",
                                                      "properties": {"pointer": {"type": "string"},
                                                                     "detail": {"type": "string"}}}}}},
            },
        },
    }  # fmt: skip


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[CONFIG].base_url))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_handler)
