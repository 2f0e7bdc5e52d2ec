"""Processes received activities: JSON-LD expansion (offline loader; unknown contexts fetched
once through the guarded client and cached), authority checks, then one handler per type.
An activity whose contexts cannot be had is read as compact AS2, as Mastodon reads every
activity, and the ingest report says so: a signed activity is never lost for its @context.
The same activity id twice changes nothing: the inbox stores each id once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.activity import Envelope, check_authority, envelope, host, ref
from federation.errors import NodeError
from federation.fetch import GuardedClient
from node import actors, federate, origins
from node.config import Config
from node.convert.common import now_utc
from node.records import Record
from node.remote import Remote
from node.storage.tables import follows, inbox_items, ingest_reports, remote_actors, reports
from node.workers import Worker, claim
from node.workers.indexer import next_attempt
from vocab.jsonld import Expansion, JsonLdSyntaxError, UnknownContextError, expand_leniently
from vocab.loader import is_known, make_document_loader, own_context

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
AS = "https://www.w3.org/ns/activitystreams#"


@dataclass(frozen=True)
class Received:
    """A stored activity, its compact JSON, its JSON-LD expansion and its envelope."""

    item_id: int
    doc: Mapping[str, Any]
    expanded: Mapping[str, Any]
    env: Envelope


Handler = Callable[["InboxWorker", Received], Awaitable[str]]
#: (connection, record, "Create" or "Update", now): what live news of another node's record triggers.
RecordHook = Callable[[AsyncConnection, Record, str, datetime], Awaitable[object]]


@dataclass
class _Item:
    row: Any
    doc: Mapping[str, Any] = field(default_factory=dict)
    env: Envelope | None = None
    expanded: Mapping[str, Any] = field(default_factory=dict)
    outcome: str = ""
    error: str | None = None
    retry: bool = False
    #: For the ingest report: why the activity was read as compact AS2 ("" if it was not).
    as_as2: str = ""


class InboxWorker(Worker):
    """Items are taken a batch at a time: one claim, one thread hop for the JSON-LD expansion
    of the whole batch, handlers in order, one transaction to record the outcomes."""

    def __init__(self, config: Config, engine: AsyncEngine, client: GuardedClient, remote: Remote,
                 on_outgoing: Callable[[], None], on_indexed: Callable[[], None] | None = None,
                 on_record: RecordHook | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config, self.engine, self.client, self.remote = config, engine, client, remote
        self.on_outgoing = on_outgoing
        #: Kicks the indexer once other nodes' records were stored.
        self.on_indexed = on_indexed or (lambda: None)
        #: Called in the storing transaction for each record another node created or changed.
        self.on_record = on_record
        #: Kicks the syncer when a followed node accepted (its directory is copied).
        self.on_synced: Callable[[], None] = lambda: None
        #: Contexts beyond the vendored ones: ours, and remote ones once fetched.
        self._contexts: dict[str, Any] = {config.context_url: own_context()}
        #: Remote contexts that could not be fetched, and why: not asked for again.
        self._unavailable: dict[str, str] = {}
        self._loader = make_document_loader(self._contexts)

    async def run_once(self) -> int:
        done = 0
        async with self.lock:
            while rows := await self._claim():
                done += await self._batch([_Item(row) for row in rows])
        return done

    async def _claim(self) -> list[Any]:
        async with self.engine.begin() as conn:
            return await claim(conn, inbox_items, now_utc(), 100, LEASE, ("id", "body", "attempts"))

    async def _batch(self, items: list[_Item]) -> int:
        for item in items:
            self._read(item)
        ready = [i for i in items if not i.outcome]
        for item in ready:
            await self._fetch_contexts(item.doc)
        expanded = await asyncio.to_thread(self._expand_all, [i.doc for i in ready])
        for item, result in zip(ready, expanded, strict=True):
            if isinstance(result, Exception):
                item.outcome, item.error = "refused", f"not valid JSON-LD, even as compact AS2: {result}"
            else:
                item.expanded = result.nodes[0] if result.nodes else {}
                item.as_as2 = self._why_as2(result)
        for item in items:
            if not item.outcome:
                await self._handle(item)
        await self._record(items)
        return sum(1 for i in items if not i.retry)

    def _read(self, item: _Item) -> None:
        """The door checked all this already; checked again, a row is never trusted blindly."""
        try:
            item.doc = json.loads(item.row.body)
            item.env = envelope(item.doc)
            check_authority(item.env)
        except NodeError as exc:
            item.outcome, item.error = "refused", exc.detail
        except ValueError as exc:
            item.outcome, item.error = "refused", f"unreadable: {exc}"

    async def _handle(self, item: _Item) -> None:
        assert item.env is not None
        handler = INBOX_HANDLERS.get(item.env.type)
        try:
            received = Received(item.row.id, item.doc, item.expanded, item.env)
            item.outcome = await handler(self, received) if handler else "ignored"
        except NodeError as exc:
            item.outcome, item.error = "refused", exc.detail
        except Exception as exc:  # noqa: BLE001 - recorded on the row and retried with backoff
            log.warning("inbox item %s failed (attempt %s): %r", item.row.id, item.row.attempts, exc)
            item.retry, item.error = True, repr(exc)[:2000]

    async def _record(self, items: list[_Item]) -> None:
        now = now_utc()
        async with self.engine.begin() as conn:
            settled = [{"item_id": i.row.id, "state": i.outcome, "error": i.error} for i in items if not i.retry]
            if settled:
                by_id = update(inbox_items).where(inbox_items.c.id == bindparam("item_id"))
                await conn.execute(by_id.values(state=bindparam("state"), last_error=bindparam("error"),
                                                locked_until=None), settled)  # fmt: skip
            for item in (i for i in items if i.retry):
                delay = next_attempt(item.row.attempts)
                values: dict[str, Any] = {"last_error": item.error, "locked_until": None}
                values |= {"next_attempt_at": now + delay} if delay else {"state": "failed"}
                await conn.execute(update(inbox_items).where(inbox_items.c.id == item.row.id).values(**values))
            await self._report_as2(conn, [i for i in items if i.as_as2 and not i.retry], now)

    async def _report_as2(self, conn: AsyncConnection, items: list[_Item], now: datetime) -> None:
        """The host sees which activities were read without their contexts (`/api/ingest-reports`),
        under the origin's graph when the sender is a node this one knows, else under its actor."""
        for item in items:
            assert item.env is not None
            origin = await origins.for_actor(conn, item.env.actor)
            reason = f"{item.env.type} read as compact AS2, its @context set aside: {item.as_as2}"
            await conn.execute(insert(ingest_reports).values(
                origin=origin.graph if origin is not None else item.env.actor, iri=item.env.id or item.env.actor,
                reason=reason[:4000], received_at=now))  # fmt: skip
            log.info("inbox item %s: %s", item.row.id, reason)

    async def announce_record(self, conn: AsyncConnection, record: Record, kind: str, now: datetime) -> None:
        if self.on_record is not None and kind in ("Create", "Update"):
            await self.on_record(conn, record, kind, now)
            self.on_outgoing()

    def _expand_all(self, docs: list[Mapping[str, Any]]) -> list[Expansion | Exception]:
        out: list[Expansion | Exception] = []
        for doc in docs:
            try:
                out.append(expand_leniently(dict(doc), loader=self._loader))
            except JsonLdSyntaxError as exc:
                out.append(exc)
        return out

    def _why_as2(self, result: Expansion) -> str:
        exc = result.set_aside
        if isinstance(exc, UnknownContextError):
            why = self._unavailable.get(exc.url, "named by another remote context, so not fetched")
            return f"remote JSON-LD context {exc.url} unavailable ({why})"
        return str(exc) if exc is not None else ""

    async def _fetch_contexts(self, doc: Mapping[str, Any]) -> None:
        """Contexts the offline loader lacks: fetched once (size- and time-limited by the guarded
        client) and kept. One that cannot be had is not asked for again: activities naming it are
        read as compact AS2 (`_expand_all`)."""
        for url in _context_urls(doc):
            if not is_known(url, self._contexts) and url not in self._unavailable:
                try:
                    _, fetched = await self.client.get_json(url, accept="application/ld+json, application/json")
                except NodeError as exc:
                    log.warning("remote JSON-LD context %s unavailable (%s)", url, exc.detail)
                    self._unavailable[url] = exc.detail
                    continue
                self._contexts[url] = fetched
                self._loader = make_document_loader(self._contexts)


def _context_urls(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        ctx = value.get("@context")
        for c in ctx if isinstance(ctx, list) else [ctx]:
            if isinstance(c, str):
                found.append(c)
        for v in value.values():
            if isinstance(v, Mapping | list):
                found += _context_urls(v)
    elif isinstance(value, list):
        for v in value:
            found += _context_urls(v)
    return list(dict.fromkeys(found))


# -- handlers ---------------------------------------------------------------------------


def _follow_parts(obj: Any) -> tuple[str, str, str]:
    """(follow id, follower, followed) of an embedded Follow or a bare Follow id."""
    if isinstance(obj, Mapping):
        return ref(obj), ref(obj.get("actor")), ref(obj.get("object"))
    return ref(obj), "", ""


async def on_follow(w: InboxWorker, r: Received) -> str:
    async with w.engine.connect() as conn:
        target = await actors.get(conn, r.env.object_id)
    if target is None:
        return "ignored"
    follower = await w.remote.actor(r.env.actor)
    now = now_utc()
    async with w.engine.begin() as conn:
        state = "pending" if target.manually_approves else "accepted"
        if target.iri == actors.node_actor_iri(w.config):
            state = await _node_follow_state(conn, w.config, follower.iri)
        if target.kind == "group" and not w.config.group_actors:
            state = "rejected"  # the host turned groups off: a group made earlier takes no follower
        if state == "rejected":
            follow = {k: v for k, v in r.doc.items() if k != "@context"}
            await federate.send(conn, w.config, target.iri, "Reject", follow, follower.inbox, now)
            w.on_outgoing()
            return "refused"
        await federate.set_follow(conn, follower.iri, target.iri, r.env.id, state, now)
        if state == "accepted":  # a repeated Follow (new id) is accepted again
            follow = {k: v for k, v in r.doc.items() if k != "@context"}
            await federate.send(conn, w.config, target.iri, "Accept", follow, follower.inbox, now)
    w.on_outgoing()
    return "done"


async def _node_follow_state(conn: AsyncConnection, config: Config, follower: str) -> str:
    """Who may copy this node's directory: anyone (open), whom the host approves, or the
    allowlist (hosts listed in the settings, and the nodes this node itself follows)."""
    if config.follow_policy == "open":
        return "accepted"
    if config.follow_policy == "approval":
        return "pending"
    known = await origins.for_actor(conn, follower)
    allowed = host(follower) in config.follow_allowlist or (known is not None and known.followed)
    return "accepted" if allowed else "rejected"


async def on_accept(w: InboxWorker, r: Received, state: str = "accepted") -> str:
    follow_id, _, _ = _follow_parts(r.doc.get("object"))
    async with w.engine.begin() as conn:
        row = await federate.follow_by_activity(conn, follow_id)
        if row is None or row.target != r.env.actor:
            return "ignored"
        await conn.execute(update(follows).where(follows.c.id == row.id).values(state=state, updated_at=now_utc()))
        origin = await origins.for_actor(conn, r.env.actor)
        starts = state == "accepted" and origin is not None and origin.followed and origin.actor == r.env.actor
        if starts:
            await origins.due_now(conn, origin.graph, now_utc())  # the bootstrap starts
    if starts:
        w.on_synced()  # after the commit: the syncer must find the row due
    return "done"


async def on_reject(w: InboxWorker, r: Received) -> str:
    return await on_accept(w, r, state="rejected")


async def on_undo(w: InboxWorker, r: Received) -> str:
    obj = r.doc.get("object")
    follow_id, follower, followed = _follow_parts(obj)
    async with w.engine.begin() as conn:
        if not followed:
            row = await federate.follow_by_activity(conn, follow_id)
            followed = row.target if row is not None else ""
        if follower not in ("", r.env.actor) or not followed:
            return "ignored"
        removed = await federate.remove_follow(conn, r.env.actor, followed)
    return "done" if removed else "ignored"


async def on_delete(w: InboxWorker, r: Received) -> str:
    if r.env.object_id != r.env.actor:
        return await federated.on_record(w, r)  # a record, deleted by its origin
    async with w.engine.begin() as conn:
        await conn.execute(delete(follows).where(or_(follows.c.follower == r.env.actor,
                                                     follows.c.target == r.env.actor)))  # fmt: skip
    await w.remote.forget(r.env.actor)
    return "done"


async def on_block(w: InboxWorker, r: Received) -> str:
    async with w.engine.begin() as conn:
        if await actors.get(conn, r.env.object_id) is None:
            return "ignored"
        await federate.remove_follow(conn, r.env.actor, r.env.object_id)
        await federate.remove_follow(conn, r.env.object_id, r.env.actor)
    return "done"


async def on_flag(w: InboxWorker, r: Received) -> str:
    objects = r.doc.get("object", [])
    iris = [ref(o) for o in (objects if isinstance(objects, list) else [objects]) if ref(o)]
    content = r.doc.get("content", "")
    async with w.engine.begin() as conn:
        await conn.execute(insert(reports).values(
            activity_id=r.env.id or None, reporter=r.env.actor, objects=json.dumps(iris),
            content=content if isinstance(content, str) else "", received_at=now_utc(), resolved=False))  # fmt: skip
    return "done"


async def on_move(w: InboxWorker, r: Received) -> str:
    """Followers of the old account follow the new one, if the new one claims the old."""
    new_iri = ref(r.doc.get("target"))
    if r.env.object_id != r.env.actor or not new_iri or host(new_iri) == "":
        return "ignored"
    new = await w.remote.actor(new_iri, refresh=True)
    async with w.engine.connect() as conn:
        cached = await _raw_doc(conn, new.iri)
    aliases = cached.get("alsoKnownAs", [])
    if r.env.actor not in (aliases if isinstance(aliases, list) else [aliases]):
        return "refused"
    now = now_utc()
    async with w.engine.begin() as conn:
        rows = (await conn.execute(select(follows).where(follows.c.follower == r.env.actor))).all()
        for row in rows:
            await federate.set_follow(conn, new.iri, row.target, row.activity_id, row.state, now)
        await federate.remove_follow(conn, r.env.actor)
    return "done"


async def _raw_doc(conn: Any, iri: str) -> Mapping[str, Any]:
    row = (await conn.execute(select(remote_actors.c.doc).where(remote_actors.c.iri == iri))).first()
    doc: Mapping[str, Any] = json.loads(row.doc) if row else {}
    return doc


from node.workers import federated  # noqa: E402 - its handlers take this module's types

INBOX_HANDLERS: dict[str, Handler] = {
    **federated.HANDLERS,
    "Follow": on_follow,
    "Accept": on_accept,
    "Reject": on_reject,
    "Undo": on_undo,
    "Delete": on_delete,
    "Block": on_block,
    "Flag": on_flag,
    "Move": on_move,
}
