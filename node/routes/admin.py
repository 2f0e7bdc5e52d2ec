"""What the host's endpoints under /api/ share: the admin check, the JSON object a change is
sent as, and paging of the lists, with the OpenAPI fragments that describe them.

A list keeps its plain JSON shape (an array, or the followers' `{"accepted", "pending"}`) and
pages by keyset: `limit` and an opaque `cursor`, the next page named in a `Link: <…>;
rel="next"` header, as /search's feeds do. A client that ignores the header still reads a
well-formed first page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from node.errors import BadRequest, Forbidden
from node.keys import CONFIG
from node.routes.api import principal, read_json

LIMIT_MAX = 100
PAGING = ("limit", "cursor")
K = TypeVar("K", str, int)
T = TypeVar("T")


async def require_admin(request: web.Request, what: str) -> None:
    """401 without a valid token, 403 for an editor's."""
    if (await principal(request)).role != "admin":
        raise Forbidden(f"{what} are for admin tokens")


async def read_object(request: web.Request) -> dict[str, Any]:
    """The JSON body, which must be an object: any other JSON is a 400, not a crash."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest(f"send a JSON object, not a {type(body).__name__}")
    return body


@dataclass(frozen=True)
class Page(Generic[K]):
    """Where a page starts (`after`: the last key of the previous page) and how long it is."""

    limit: int
    after: K | None


def page_of(request: web.Request, key: type[K], known: Sequence[str] = ()) -> Page[K]:
    """The paging parameters, each bad one a 400 that names it; any other parameter than
    `known` and the paging ones is refused, so a misspelt filter is not silently ignored."""
    unknown = sorted(set(request.query) - {*known, *PAGING})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown parameter; known: {', '.join([*known, *PAGING])}")
    text = request.query.get("limit")
    if text is not None and not (text.isdigit() and 1 <= int(text) <= LIMIT_MAX):
        raise BadRequest(f"limit: a whole number from 1 to {LIMIT_MAX}, not {text!r}")
    cursor = request.query.get("cursor")
    return Page(LIMIT_MAX if text is None else int(text), None if cursor is None else _decode(cursor, key))


def split(page: Page[K], rows: Sequence[T], key: Callable[[T], K]) -> tuple[Sequence[T], K | None]:
    """The rows of the page (fetched one past its limit, to know whether another follows) and
    the key the next page starts after, None on the last page."""
    if len(rows) > page.limit:
        return rows[: page.limit], key(rows[page.limit - 1])
    return rows, None


def _encode(value: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")


def _decode(text: str, key: type[K]) -> K:
    try:
        (value,) = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("cursor: not a cursor this node made; start again without it") from None
    # bool is an int to Python, never a key here
    if not isinstance(value, key) or isinstance(value, bool):
        raise BadRequest("cursor: not a cursor of this list; start again without it")
    return value


def paged(request: web.Request, body: Any, next_after: str | int | None, status: int = 200) -> web.Response:
    """`body` as JSON; when `next_after` is given, the URL of the page after it in `Link`."""
    response = web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")
    if next_after is not None:
        query = [(k, v) for k, v in request.query.items() if k != "cursor"] + [("cursor", _encode(next_after))]
        url = f"{request.app[CONFIG].base_url}{request.path}?{urlencode(query)}"  # the public URL, behind a proxy too
        response.headers["Link"] = f'<{url}>; rel="next"'
    return response


# -- OpenAPI --------------------------------------------------------------------------

SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
TEXT: dict[str, Any] = {"type": "string"}
#: What body_field takes: a string that is not empty.
GIVEN: dict[str, Any] = {"type": "string", "minLength": 1}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
SLUG = {"name": "slug", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}}  # fmt: skip
PAGE_PARAMETERS: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "description": f"items per page (default {LIMIT_MAX})",
     "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}},
    {"name": "cursor", "in": "query", "description": "from the previous page's Link: rel=\"next\"", "schema": TEXT},
]  # fmt: skip
_SAID = {
    "400": "A bad parameter or body, named in detail", "401": "Missing, unknown or revoked token",
    "403": "The token may not do this (admin only, or not this initiative's editor), or the address is refused "
           "(private, blocked)", "404": "Nothing of that name",
    "413": "Body larger than the node accepts", "415": "Body is not JSON",
    "502": "The other server did not answer as it should",
}  # fmt: skip


def problems(*codes: str) -> dict[str, Any]:
    return {code: {"description": _SAID[code], "content": PROBLEM} for code in codes}


def json_body(properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": list(required), "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def listing(summary: str, operation: str, description: str, schema: dict[str, Any],
            parameters: Sequence[dict[str, Any]] = (), codes: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    """A GET of a paged list, behind a bearer token (with the other errors `codes`)."""
    ok = answer(description, schema) | {"headers": {"Link": {
        "description": "<URL>; rel=\"next\" while there is a next page", "schema": TEXT}}}  # fmt: skip
    return {"summary": summary, "operationId": operation, "security": SECURED,
            "parameters": [*parameters, *PAGE_PARAMETERS],
            "responses": {"200": ok, **problems("400", "401", "403", *codes)}}  # fmt: skip


def change(summary: str, operation: str, body: dict[str, Any], status: str, result: dict[str, Any],
           codes: Sequence[str], parameters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:  # fmt: skip
    """A POST, PATCH or DELETE with a JSON object body, behind a bearer token (with the other errors `codes`)."""
    operation_doc: dict[str, Any] = {"summary": summary, "operationId": operation, "security": SECURED,
                                     "requestBody": body,
                                     "responses": {status: result, **problems("400", "401", "403", "413", "415",
                                                                              *codes)}}  # fmt: skip
    if parameters:
        operation_doc["parameters"] = list(parameters)
    return operation_doc
