"""What this node's actors say to the fediverse: activities in their outboxes, and the
delivery rows that carry them to followers. Everything here runs inside the caller's SQL
transaction, so a record and the news of it are durable together."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.activity import PUBLIC, host
from federation.delivery import Recipient, inboxes
from node.config import Config
from node.convert.as2 import actor_contexts
from node.convert.common import fmt_datetime
from node.storage.tables import activities, deliveries, follows, relayed, remote_actors

Doc = dict[str, Any]


def activity_iri(config: Config) -> str:
    return f"{config.base_url}/activities/{uuid.uuid4()}"


def followers_iri(actor: str) -> str:
    return f"{actor}/followers"


async def follower_recipients(conn: AsyncConnection, actor: str) -> list[Recipient]:
    query = (
        select(remote_actors.c.iri, remote_actors.c.inbox, remote_actors.c.shared_inbox)
        .join(follows, follows.c.follower == remote_actors.c.iri)
        .where(follows.c.target == actor, follows.c.state == "accepted")
    )
    return [Recipient(r.iri, r.inbox, r.shared_inbox) for r in await conn.execute(query)]


async def record_activity(conn: AsyncConnection, config: Config, actor: str, kind: str, obj: Doc | str | list[str],
                          now: datetime, *, public: bool, iri: str = "", extra: Doc | None = None,
                          ) -> tuple[int, Doc]:  # fmt: skip
    """Store an activity (the outbox); its id dereferences at /activities/{uuid}."""
    iri = iri or activity_iri(config)
    doc: Doc = {"@context": actor_contexts(config.context_url), "id": iri, "type": kind,
                "actor": actor, "published": fmt_datetime(now), "object": obj, **(extra or {})}  # fmt: skip
    if public:
        doc["to"] = [PUBLIC]
        doc["cc"] = [followers_iri(actor)]
    if isinstance(obj, list):  # a Flag's objects
        object_id = obj[0] if obj else ""
    else:
        object_id = obj if isinstance(obj, str) else str(obj.get("id", ""))
    result = await conn.execute(
        insert(activities).values(iri=iri, actor=actor, type=kind, object=object_id, doc=json.dumps(doc),
                                  public=public, published=now).returning(activities.c.id)  # fmt: skip
    )
    return int(result.scalar_one()), doc


async def enqueue_deliveries(conn: AsyncConnection, activity_id: int, targets: Sequence[str], now: datetime) -> int:
    rows = [{"activity_id": activity_id, "inbox": inbox, "host": host(inbox), "state": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now} for inbox in sorted(set(targets))]  # fmt: skip
    if rows:
        await conn.execute(insert(deliveries), rows)
    return len(rows)


async def publish(conn: AsyncConnection, config: Config, actor: str, kind: str, obj: Doc | str, now: datetime,
                  *, fanout: bool = True) -> int:  # fmt: skip
    """Create/Update/Delete to the public and the actor's followers. `obj` is the object, or
    an IRI (Delete of an actor). `fanout=False` (imports) keeps it in the outbox only."""
    if not isinstance(obj, str):
        obj = {k: v for k, v in obj.items() if k != "@context"}
        obj.setdefault("to", [PUBLIC])
        obj.setdefault("cc", [followers_iri(actor)])
    activity_id, _ = await record_activity(conn, config, actor, kind, obj, now, public=True)
    if not fanout:
        return 0
    return await enqueue_deliveries(conn, activity_id, inboxes(await follower_recipients(conn, actor)), now)


async def send(conn: AsyncConnection, config: Config, actor: str, kind: str, obj: Doc | str, inbox: str,
               now: datetime, iri: str = "") -> str:  # fmt: skip
    """A non-public activity to one inbox (Accept, Reject, Follow, Undo)."""
    activity_id, doc = await record_activity(conn, config, actor, kind, obj, now, public=False, iri=iri)
    await enqueue_deliveries(conn, activity_id, [inbox], now)
    return str(doc["id"])


# -- follows --------------------------------------------------------------------------


async def set_follow(conn: AsyncConnection, follower: str, target: str, activity_id: str, state: str,
                     now: datetime) -> None:  # fmt: skip
    pair = and_(follows.c.follower == follower, follows.c.target == target)
    found = (await conn.execute(select(follows.c.id).where(pair))).first()
    if found is None:
        await conn.execute(insert(follows).values(follower=follower, target=target, activity_id=activity_id,
                                                  state=state, created_at=now, updated_at=now))  # fmt: skip
    else:
        await conn.execute(update(follows).where(pair).values(activity_id=activity_id, state=state, updated_at=now))


async def remove_follow(conn: AsyncConnection, follower: str, target: str | None = None) -> int:
    query = delete(follows).where(follows.c.follower == follower)
    if target is not None:
        query = query.where(follows.c.target == target)
    return int((await conn.execute(query)).rowcount)


async def follow_row(conn: AsyncConnection, follower: str, target: str) -> Any:
    pair = and_(follows.c.follower == follower, follows.c.target == target)
    return (await conn.execute(select(follows).where(pair))).first()


async def follow_by_activity(conn: AsyncConnection, activity_id: str) -> Any:
    return (await conn.execute(select(follows).where(follows.c.activity_id == activity_id))).first()


async def followers(conn: AsyncConnection, target: str, state: str = "accepted") -> list[str]:
    query = select(follows.c.follower).where(follows.c.target == target, follows.c.state == state)
    return [r.follower for r in await conn.execute(query.order_by(follows.c.created_at, follows.c.id))]


async def following(conn: AsyncConnection, follower: str, state: str = "accepted") -> list[str]:
    query = select(follows.c.target).where(follows.c.follower == follower, follows.c.state == state)
    return [r.target for r in await conn.execute(query.order_by(follows.c.created_at, follows.c.id))]


# -- the node actor: other nodes and relays -------------------------------------------------

#: What relays and ordinary servers are sent: Announces of what they can show (INTEROP.md).
SHOWN_KINDS = frozenset({"event", "need", "offer"})


def is_node(actor_doc: str) -> bool:
    """Another directory node (its actor publishes a dataset), as opposed to a relay or a person."""
    try:
        doc = json.loads(actor_doc)
    except ValueError:
        return False
    return isinstance(doc, dict) and any(isinstance(doc.get(k), str) for k in ("osc:dataset", "dataset"))


async def node_followers(conn: AsyncConnection, config: Config) -> tuple[list[Recipient], list[Recipient]]:
    """The node actor's accepted followers: (other nodes, everyone else)."""
    query = (
        select(remote_actors.c.iri, remote_actors.c.inbox, remote_actors.c.shared_inbox, remote_actors.c.doc)
        .join(follows, follows.c.follower == remote_actors.c.iri)
        .where(follows.c.target == f"{config.base_url}/actor", follows.c.state == "accepted")
    )
    nodes: list[Recipient] = []
    others: list[Recipient] = []
    for r in await conn.execute(query):
        (nodes if is_node(r.doc) else others).append(Recipient(r.iri, r.inbox, r.shared_inbox))
    return nodes, others


async def publish_to_nodes(conn: AsyncConnection, config: Config, kind: str, record_kind: str, obj: Doc | str,
                           now: datetime) -> int:  # fmt: skip
    """Every change of a record, by the node actor: the whole record to follower nodes, and an
    Announce of new events, needs and offers to relays and other followers."""
    nodes, others = await node_followers(conn, config)
    actor = f"{config.base_url}/actor"
    sent = 0
    if nodes:
        body = obj if isinstance(obj, str) else {k: v for k, v in obj.items() if k != "@context"}
        activity_id, _ = await record_activity(conn, config, actor, kind, body, now, public=True)
        sent += await enqueue_deliveries(conn, activity_id, inboxes(nodes), now)
    if others and kind == "Create" and record_kind in SHOWN_KINDS and not isinstance(obj, str):
        activity_id, _ = await record_activity(conn, config, actor, "Announce", str(obj["id"]), now, public=True)
        sent += await enqueue_deliveries(conn, activity_id, inboxes(others), now)
    return sent


async def relay(conn: AsyncConnection, config: Config, activity: Doc, now: datetime,
                skip_hosts: Sequence[str]) -> int:  # fmt: skip
    """Pass another node's activity on to our follower nodes, once: an activity this node has
    relayed before is never relayed again, so a cycle of nodes settles."""
    inner = str(activity.get("id", ""))
    if not inner or (await conn.execute(select(relayed.c.activity).where(relayed.c.activity == inner))).first():
        return 0
    await conn.execute(insert(relayed).values(activity=inner, relayed_at=now))
    nodes, _ = await node_followers(conn, config)
    targets = [r for r in nodes if host(r.actor) not in skip_hosts]
    if not targets:
        return 0
    body = {k: v for k, v in activity.items() if k != "@context"}
    activity_id, _ = await record_activity(conn, config, f"{config.base_url}/actor", "Announce", body, now,
                                           public=True)  # fmt: skip
    return await enqueue_deliveries(conn, activity_id, inboxes(targets), now)
