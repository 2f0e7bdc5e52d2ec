"""Inbox handlers for other nodes' records: Create, Update and Delete from the origin itself,
and Announce of another origin's activity by a node that relays it.

A relayed activity is never believed: its object is fetched from its origin, and what the
origin answers is what is stored. Direct activities pass the authority check at the door
(an actor only changes what lives on its own host) and SHACL here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from federation.activity import first_type, host, ref
from federation.errors import NodeError, Refused, RemoteError
from node import federate, ingest, origins
from node.convert.common import now_utc
from node.storage.tables import relayed

if TYPE_CHECKING:
    from node.workers.inbox import InboxWorker, Received

log = logging.getLogger(__name__)
ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


def _live(row: Any) -> bool:
    """An origin whose news we take: followed or learned through a relay, not blocked or frozen."""
    return row is not None and row.policy != "blocked" and row.sync_state != "frozen" and (row.followed or row.via)


async def on_record(w: InboxWorker, r: Received) -> str:
    """Create, Update or Delete of a record by its own node (or one of its initiatives)."""
    async with w.engine.connect() as conn:
        row = await origins.for_actor(conn, r.env.actor)
    if not _live(row) or ingest.kind_of(r.env.object_id, row.base_url) is None:
        return "ignored"
    origin = ingest.Origin.of(row)
    obj = r.doc.get("object")
    if r.env.type == "Delete":
        item: Mapping[str, Any] = {"id": r.env.object_id, "type": "Tombstone", "deleted": r.doc.get("published")}
    elif isinstance(obj, Mapping):
        item = obj
    else:  # an object given by IRI only: ask its origin
        return await _from_origin(w, origin, r.env.object_id, kind=r.env.type)
    written = await _ingest(w, origin, item, r.doc.get("@context"), r.env.type)
    if written and row.relay and row.policy == "trusted":
        await _relay(w, r.doc, [row.host])
    return "done" if written else "unchanged"


async def on_announce(w: InboxWorker, r: Received) -> str:
    """A node we follow passes on another origin's activity: fetch the object from its origin."""
    inner = r.doc.get("object")
    if not isinstance(inner, Mapping) or first_type(inner.get("type")) not in ("Create", "Update", "Delete"):
        return "ignored"  # an Announce of a post (a boost): nothing for the directory
    inner_id, inner_actor, object_id = ref(inner), ref(inner.get("actor")), ref(inner.get("object"))
    if not inner_id or not inner_actor or not object_id:
        return "ignored"
    origin_host = host(inner_actor)
    if host(object_id) != origin_host or host(inner_id) != origin_host:
        raise Refused(f"relayed {inner_id}: {inner_actor} may not change {object_id}")
    if origin_host in (host(w.config.base_url), host(r.env.actor)):
        return "ignored"  # our own news coming back, or an Announce of the sender's own activity
    async with w.engine.connect() as conn:
        via = await origins.for_actor(conn, r.env.actor)
        if not _live(via):
            return "ignored"
        if (await conn.execute(select(relayed.c.activity).where(relayed.c.activity == inner_id))).first():
            return "ignored"  # already handled: it came by another path
        row = await origins.for_actor(conn, inner_actor)
    if row is None:
        row = await _learn(w, origin_host, via.graph)
    if row.policy == "blocked" or row.sync_state == "frozen":
        return "ignored"
    origin = ingest.Origin.of(row)
    if ingest.kind_of(object_id, origin.base_url) is None:
        return "ignored"
    outcome = await _from_origin(w, origin, object_id, kind=first_type(inner.get("type")))
    async with w.engine.begin() as conn:
        if via.relay and row.policy == "trusted":
            await federate.relay(conn, w.config, dict(inner), now_utc(), [via.host, origin_host])
        elif not (await conn.execute(select(relayed.c.activity).where(relayed.c.activity == inner_id))).first():
            await conn.execute(insert(relayed).values(activity=inner_id, relayed_at=now_utc()))
    w.on_outgoing()
    return outcome


async def _learn(w: InboxWorker, origin_host: str, via: str) -> Any:
    """An origin first heard of through a relay: found by its NodeInfo, copied from itself."""
    scheme = "http" if w.config.allow_private else "https"
    found = await origins.discover(w.client, w.remote, await origins.node_actor_of(w.client, f"{scheme}://{origin_host}/"))
    async with w.engine.begin() as conn:
        return await origins.register(conn, found, now_utc(), via=via)


async def _from_origin(w: InboxWorker, origin: ingest.Origin, iri: str, *, kind: str) -> str:
    deleted = kind == "Delete"
    try:
        _, doc = await w.client.get_json(iri, accept=ACCEPT, sign=w.remote.sign)
    except RemoteError as exc:
        if exc.remote_status not in (404, 410) or (exc.remote_status == 404 and not deleted):
            raise
        doc = {"id": iri, "type": "Tombstone"}
    if first_type(doc.get("type")) == "Tombstone":
        doc = {"id": iri, "type": "Tombstone", "deleted": doc.get("deleted")}
    if ref(doc) != iri:
        raise Refused(f"{iri} answered with another object ({ref(doc)!r})")
    written = await _ingest(w, origin, doc, doc.get("@context"), kind)
    return "done" if written else "unchanged"


async def _ingest(w: InboxWorker, origin: ingest.Origin, item: Mapping[str, Any], context: Any,
                  kind: str) -> int:  # fmt: skip
    now = now_utc()
    clean = {k: v for k, v in item.items() if k != "@context"}
    incoming, refused = await asyncio.to_thread(ingest.read_page, [clean], context, origin, w.config, now)
    async with w.engine.begin() as conn:
        outcome = await ingest.store(conn, origin, incoming, now, refused)
        for record in outcome.written:
            await w.announce_record(conn, record, kind, now)
    if outcome.refused:
        iri, reason = outcome.refused[0]
        await _tell_origin(w, origin, iri, reason)
        raise Refused(f"{iri}: {reason}")
    if outcome.written or outcome.deleted:
        w.on_indexed()
    return len(outcome.written) + len(outcome.deleted)


async def _tell_origin(w: InboxWorker, origin: ingest.Origin, iri: str, reason: str) -> None:
    """A record we refused: its origin hears why (a Flag, as Mastodon reports are sent)."""
    try:
        target = await w.remote.actor(origin.actor)
    except NodeError as exc:
        log.warning("cannot tell %s why %s was refused: %s", origin.actor, iri, exc.detail)
        return
    now = now_utc()
    async with w.engine.begin() as conn:
        activity_id, _ = await federate.record_activity(
            conn, w.config, f"{w.config.base_url}/actor", "Flag", [iri], now, public=False,
            extra={"content": f"Refused by {w.config.host}: {reason}"[:2000], "to": [origin.actor]})
        await federate.enqueue_deliveries(conn, activity_id, [target.shared_inbox or target.inbox], now)
    w.on_outgoing()
    log.info("told %s that %s was refused: %s", origin.actor, iri, reason)


async def _relay(w: InboxWorker, activity: Mapping[str, Any], skip: list[str]) -> None:
    async with w.engine.begin() as conn:
        await federate.relay(conn, w.config, dict(activity), now_utc(), skip)
    w.on_outgoing()


HANDLERS = {"Create": on_record, "Update": on_record, "Announce": on_announce}
