"""Routes of the thematic and local Group actors (node/groups.py) and of the node's starter pack
(FEP-7aa9): a `FeaturedCollection` of its initiatives' actors, listed in the node actor's
`featuredCollections`, each item with a `FeatureAuthorization` stamp served by the initiative.

With groups turned off, a group made earlier answers 410 Gone (a Tombstone), and its inbox
still takes `Undo` and `Delete`: its followers can leave, and their servers stop retrying."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.activity import first_type
from node import actors, groups
from node.config import Config
from node.convert.common import fmt_datetime
from node.errors import Gone, NotFound
from node.keys import CONFIG, ENGINE
from node.negotiate import Format
from node.records import KIND_LABELS
from node.routes import activitypub
from node.routes.publish import content_type, render_page, wanted
from node.storage import tables
from vocab import AS2_CONTEXT

GROUP = "{group:[a-z0-9_-]{1,64}}"
#: What the inbox of a group the host turned off still takes: what lets a follower finish.
GONE_GROUP_TAKES = frozenset({"Undo", "Delete"})
#: FEP-7aa9 advises at most 150 items; a larger starter pack is paged.
STARTER_PAGE = 150
STARTER_PATH = "/starter-pack"
STAMP = "stamps/starter-pack"
_FEP = groups.FEP_7AA9
FEATURED_CONTEXT: list[Any] = [AS2_CONTEXT, {
    "toot": "http://joinmastodon.org/ns#", "discoverable": "toot:discoverable", "sensitive": "as:sensitive",
    "FeaturedCollection": f"{_FEP}FeaturedCollection", "FeaturedItem": f"{_FEP}FeaturedItem",
    "featuredObject": {"@id": f"{_FEP}featuredObject", "@type": "@id"},
    "featuredObjectType": f"{_FEP}featuredObjectType",
    "featureAuthorization": {"@id": f"{_FEP}featureAuthorization", "@type": "@id"},
}]  # fmt: skip
STAMP_CONTEXT: list[Any] = [AS2_CONTEXT, {
    "gts": "https://gotosocial.org/ns#", "FeatureAuthorization": f"{_FEP}FeatureAuthorization",
    "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
    "interactionTarget": {"@id": "gts:interactionTarget", "@type": "@id"},
}]  # fmt: skip


def _wanted(request: web.Request) -> Format:
    return wanted(request, ("html", "as2", "jsonld", "json"))


def _as2(request: web.Request, fmt: Format, body: dict[str, Any]) -> web.Response:
    response = web.Response(body=json.dumps(body, ensure_ascii=False).encode(), headers={"Vary": "Accept"})
    response.headers["Content-Type"] = content_type(fmt if fmt != "json" else "as2", request)
    return response


# -- groups ------------------------------------------------------------------------------


class GroupGone(Gone):
    """A group made while groups were on, asked for once the host turned them off."""

    def __init__(self, iri: str) -> None:
        super().__init__(f"{iri} is gone: this node's host turned its groups off")
        self.iri = iri


async def _group(request: web.Request) -> tuple[groups.Group, actors.LocalActor]:
    config = request.app[CONFIG]
    key = request.match_info["group"]
    group = groups.group_from_key(key)
    if group is not None and not config.group_actors:
        # 404 would say it never existed: its followers' servers would keep retrying.
        async with request.app[ENGINE].connect() as conn:
            made = await actors.get(conn, group.iri(config.base_url))
        if made is not None:
            raise GroupGone(made.iri)
        group = None
    actor = await groups.actor_for(request.app[ENGINE], config, group) if group else None
    if group is None or actor is None:
        raise NotFound(f"no group {config.base_url}/groups/{key}")
    return group, actor


async def group_handler(request: web.Request) -> web.Response:
    """The actor, made on first request; its HTML page lists its newest records."""
    fmt = _wanted(request)
    try:
        group, actor = await _group(request)
    except GroupGone as gone:
        if fmt == "html":
            raise
        tombstone = {"@context": AS2_CONTEXT, "id": gone.iri, "type": "Tombstone", "formerType": "Group"}
        response = _as2(request, fmt, tombstone)
        response.set_status(410)
        return response
    config = request.app[CONFIG]
    async with request.app[ENGINE].connect() as conn:
        commune = await groups.commune_name(conn, group.place) if group.commune else ""
        newest = await groups.newest(conn, group) if fmt == "html" else []
    if fmt != "html":
        return _as2(request, fmt, groups.group_actor_doc(config, actor, group, commune))
    items = [(iri, name, KIND_LABELS.get(kind, kind)) for iri, kind, name in newest]
    intro = f"@{actor.username}@{config.host} — {groups.group_summary(group, config.node_name, commune)}"
    return render_page(request, "list.html", title=groups.group_label(group, commune), items=items, intro=intro,
                       next=None)  # fmt: skip


async def featured_handler(request: web.Request) -> web.Response:
    """What Mastodon shows a new follower (it reads no outbox): the group's newest posts."""
    group, actor = await _group(request)
    async with request.app[ENGINE].connect() as conn:
        items = [iri for iri, _, _ in await groups.newest(conn, group, groups.ANNOUNCED_KINDS)]
    return _as2(request, "as2", {"@context": AS2_CONTEXT, "id": f"{actor.iri}/featured", "type": "OrderedCollection",
                                 "totalItems": len(items), "orderedItems": items})  # fmt: skip


async def group_collection_handler(request: web.Request) -> web.Response:
    await _group(request)
    return await activitypub.collection_handler(request)


async def group_inbox_handler(request: web.Request) -> web.Response:
    try:
        await _group(request)
    except GroupGone:
        if _activity_type(await request.read()) not in GONE_GROUP_TAKES:
            raise
    return await activitypub.inbox_handler(request)  # verified, stored and processed as any other


def _activity_type(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:  # not an activity: gone like the rest
        return ""
    return first_type(doc.get("type")) if isinstance(doc, dict) else ""


# -- the starter pack (FEP-7aa9) ----------------------------------------------------------


def _live_local_initiatives(config: Config) -> Any:
    records = tables.records
    return (records.c.kind == "initiative") & (records.c.origin == config.graph_iri) & records.c.deleted_at.is_(None)


async def _initiatives(conn: AsyncConnection, config: Config, after: int, limit: int) -> list[Any]:
    records = tables.records
    query = (select(records.c.id, records.c.iri, records.c.slug, records.c.name, records.c.published)
             .where(_live_local_initiatives(config), records.c.id > after)
             .order_by(records.c.id).limit(limit))  # fmt: skip
    return list((await conn.execute(query)).all())


def starter_item(pack: str, row: Any) -> dict[str, Any]:
    return {"id": f"{pack}#{row.slug}", "type": "FeaturedItem", "featuredObject": row.iri,
            "featuredObjectType": "Organization", "featureAuthorization": f"{row.iri}/{STAMP}",
            "published": fmt_datetime(row.published)}  # fmt: skip


def starter_pack_doc(config: Config, total: int, rows: list[Any]) -> dict[str, Any]:
    """The collection; its items inline when they fit on one page, else a `first` page."""
    pack = config.base_url + STARTER_PATH
    doc: dict[str, Any] = {
        "@context": FEATURED_CONTEXT, "id": pack, "type": "FeaturedCollection", "url": pack,
        "name": f"Les initiatives de {config.node_name}",
        "summary": f"<p>Les initiatives de l'économie sociale et solidaire que publie {config.node_name}.</p>",
        "attributedTo": actors.node_actor_iri(config), "discoverable": True, "sensitive": False, "totalItems": total,
    }  # fmt: skip
    if total <= STARTER_PAGE:
        doc["orderedItems"] = [starter_item(pack, r) for r in rows]
    else:
        doc["first"] = f"{pack}?page=true"
    return doc


def starter_page_doc(config: Config, after: int, rows: list[Any], more: bool) -> dict[str, Any]:
    pack = config.base_url + STARTER_PATH
    page_id = f"{pack}?page=true" + (f"&after={after}" if after else "")
    page: dict[str, Any] = {"@context": FEATURED_CONTEXT, "id": page_id, "type": "OrderedCollectionPage",
                            "partOf": pack, "orderedItems": [starter_item(pack, r) for r in rows]}  # fmt: skip
    if more:
        page["next"] = f"{pack}?page=true&after={rows[-1].id}"
    return page


async def starter_pack_handler(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    fmt = _wanted(request)
    after = int(request.query["after"]) if request.query.get("after", "").isdigit() else 0
    paged = "page" in request.query
    async with request.app[ENGINE].connect() as conn:
        count = select(func.count()).select_from(tables.records).where(_live_local_initiatives(config))
        total = int((await conn.execute(count)).scalar_one())
        rows = await _initiatives(conn, config, after, STARTER_PAGE + 1)
    more, rows = len(rows) > STARTER_PAGE, rows[:STARTER_PAGE]
    if fmt == "html":
        items = [(r.iri, r.name, f"@{r.slug}@{config.host}") for r in rows]
        nxt = f"{config.base_url}{STARTER_PATH}?page=true&after={rows[-1].id}&format=html" if more else None
        return render_page(request, "list.html", title=f"Les initiatives de {config.node_name} à suivre",
                           items=items, intro=f"{total} comptes du Fédivers, un par initiative.", next=nxt)  # fmt: skip
    if paged:
        return _as2(request, fmt, starter_page_doc(config, after, rows, more))
    return _as2(request, fmt, starter_pack_doc(config, total, rows))


async def featured_collections_handler(request: web.Request) -> web.Response:
    """The node actor's `featuredCollections`: its one starter pack."""
    base = request.app[CONFIG].base_url
    return _as2(request, "as2", {"@context": AS2_CONTEXT, "id": f"{base}/actor/collections",
                                 "type": "OrderedCollection", "totalItems": 1, "orderedItems": [base + STARTER_PATH]})


async def stamp_handler(request: web.Request) -> web.Response:
    """The initiative's consent to be in the starter pack: the node is its host and curator."""
    config = request.app[CONFIG]
    iri = f"{config.base_url}/initiatives/{request.match_info['slug']}"
    records = tables.records
    async with request.app[ENGINE].connect() as conn:
        query = select(records.c.id).where(_live_local_initiatives(config), records.c.iri == iri)
        found = (await conn.execute(query)).first()
    if found is None:
        raise NotFound(f"no initiative {iri} in the starter pack")
    return _as2(request, "as2", {"@context": STAMP_CONTEXT, "id": f"{iri}/{STAMP}", "type": "FeatureAuthorization",
                                 "interactingObject": config.base_url + STARTER_PATH, "interactionTarget": iri})


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"/groups/{GROUP}", group_handler)
    app.router.add_get(f"/groups/{GROUP}/featured", featured_handler)
    app.router.add_get(f"/groups/{GROUP}/{{what:followers|following|outbox}}", group_collection_handler)
    app.router.add_post(f"/groups/{GROUP}/inbox", group_inbox_handler)
    app.router.add_get(STARTER_PATH, starter_pack_handler)
    app.router.add_get("/actor/collections", featured_collections_handler)
    app.router.add_get(f"/initiatives/{{slug:[a-z0-9_]{{1,64}}}}/{STAMP}", stamp_handler)
