"""The SKOS schemes every node ships, served as linked data at /vocab/{scheme}[/{notation}]."""

from __future__ import annotations

from functools import lru_cache

import pyoxigraph as ox
from aiohttp import web

from node.convert.rdf import PREFIXES
from node.errors import NotFound
from node.keys import CONFIG
from node.negotiate import Format
from node.routes import pages
from node.routes.publish import content_type, render_page, wanted
from vocab import SCHEMES, VOCAB_BASE, schemes

VOCAB_FORMATS: tuple[Format, ...] = ("html", "jsonld", "as2", "json", "turtle", "ntriples")
_OX = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES}


@lru_cache(maxsize=1)
def _triples() -> tuple[ox.Triple, ...]:
    parsed = ox.parse(schemes.schemes_ntriples().encode(), format=ox.RdfFormat.N_TRIPLES)
    return tuple(ox.Triple(q.subject, q.predicate, q.object) for q in parsed)


def _about(prefix: str, exact: bool) -> list[ox.Triple]:
    def subject(t: ox.Triple) -> str:
        return t.subject.value if isinstance(t.subject, ox.NamedNode) else ""

    return [t for t in _triples() if (subject(t) == prefix if exact else subject(t).startswith(prefix))]


def _serialize(triples: list[ox.Triple], fmt: Format) -> bytes:
    if fmt in ("jsonld", "as2", "json"):
        return ox.serialize(triples, format=ox.RdfFormat.JSON_LD) or b""
    return ox.serialize(triples, format=_OX[fmt], prefixes=PREFIXES | {"": VOCAB_BASE}) or b""


def _answer(request: web.Request, fmt: Format, triples: list[ox.Triple], title: str,
            items: list[tuple[str, str, str]]) -> web.Response:  # fmt: skip
    if fmt == "html":
        return render_page(request, "list.html", title=title, items=items, intro="", next=None)
    response = web.Response(body=_serialize(triples, fmt))
    response.headers["Content-Type"] = content_type(fmt, request)
    response.headers["Vary"] = "Accept"
    return response


async def scheme_handler(request: web.Request) -> web.Response:
    name = request.match_info["scheme"]
    fmt = wanted(request, VOCAB_FORMATS)
    iri = schemes.scheme_iri(name)
    concepts = sorted((c for c in schemes.concepts().values() if c.scheme == name), key=lambda c: c.notation)
    base = request.app[CONFIG].base_url
    items = [(pages.local_url(c.iri, base), c.label(), c.notation) for c in concepts]
    return _answer(request, fmt, _about(iri, exact=False), name, items)


async def concept_handler(request: web.Request) -> web.Response:
    name, notation = request.match_info["scheme"], request.match_info["notation"]
    fmt = wanted(request, VOCAB_FORMATS)
    concept = schemes.concept(name, notation)
    if concept is None:
        raise NotFound(f"no concept {notation!r} in /vocab/{name}")
    base = request.app[CONFIG].base_url
    related = [(pages.local_url(b, base), pages.label(b), "plus large") for b in concept.broader]
    related += [(pages.local_url(n, base), pages.label(n), "plus précis") for n in concept.narrower]
    return _answer(request, fmt, _about(concept.iri, exact=True), pages.label(concept.iri), related)


async def tag_handler(request: web.Request) -> web.Response:
    """Hashtags link here (Mastodon follows `href`): the theme's page on this node."""
    notation = request.match_info["notation"]
    if schemes.concept("themes", notation) is None:
        raise NotFound(f"no theme {notation!r}")
    raise web.HTTPFound(f"{request.app[CONFIG].base_url}/vocab/themes/{notation}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tags/{notation:[A-Za-z0-9_]{1,64}}", tag_handler)
    pattern = "{scheme:" + "|".join(SCHEMES) + "}"
    app.router.add_get(f"/vocab/{pattern}", scheme_handler)
    app.router.add_get(f"/vocab/{pattern}/{{notation:[A-Za-z0-9_-]{{1,64}}}}", concept_handler)

