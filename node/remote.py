"""Remote actors: fetched through the guarded client with a signed GET, cached in SQL,
refetched when their key no longer verifies (rotation)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urldefrag

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.activity import first_type, host, ref
from federation.errors import MalformedActivity, SignatureError
from federation.fetch import GuardedClient, Signer
from federation.signatures import ResolvedKey
from node.convert.common import now_utc
from node.storage.tables import remote_actors

#: How long a key stays in memory before SQL is asked again (seconds).
KEY_CACHE_SECONDS = 600.0
#: A key is refetched at most this often (seconds), whatever the signatures say.
REFETCH_EVERY = 300.0
ACTOR_TYPES = frozenset({"Person", "Organization", "Group", "Service", "Application"})
#: A cached actor older than this is refetched before use.
MAX_AGE = timedelta(days=1)


@dataclass(frozen=True)
class RemoteActor:
    iri: str
    host: str
    username: str
    inbox: str
    shared_inbox: str | None
    key_id: str | None
    public_pem: str | None


def _keys(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = doc.get("publicKey", [])
    return [k for k in (value if isinstance(value, list) else [value]) if isinstance(k, Mapping)]


def actor_from_doc(doc: Mapping[str, Any], url: str) -> RemoteActor:
    """Mastodon's rules: the body's id is the URL asked for; an actor type; an inbox."""
    iri = ref(doc)
    if iri != urldefrag(url)[0]:
        raise MalformedActivity(f"{url} answered a document whose id is {iri!r}")
    if first_type(doc.get("type")) not in ACTOR_TYPES:
        raise MalformedActivity(f"{iri} is not an actor (type {doc.get('type')!r})")
    inbox = ref(doc.get("inbox"))
    if not inbox:
        raise MalformedActivity(f"actor {iri} has no inbox")
    endpoints = doc.get("endpoints")
    shared = ref(endpoints.get("sharedInbox")) if isinstance(endpoints, Mapping) else ""
    keys = [k for k in _keys(doc) if ref(k.get("owner")) in ("", iri)]
    key = keys[0] if keys else {}
    username = doc.get("preferredUsername")
    return RemoteActor(
        iri=iri, host=host(iri), username=username if isinstance(username, str) else "",
        inbox=inbox, shared_inbox=shared or None, key_id=ref(key) or None,
        public_pem=key.get("publicKeyPem") if isinstance(key.get("publicKeyPem"), str) else None,
    )  # fmt: skip


class Remote:
    def __init__(self, engine: AsyncEngine, client: GuardedClient, sign: Signer) -> None:
        self.engine, self.client, self.sign = engine, client, sign
        #: key id -> when it was last refetched: a flood of bad signatures must not make us
        #: hammer the named server (or let anyone use us to do it).
        self._refetched: dict[str, float] = {}
        #: key id -> (resolved key, when): the inbox checks a signature per POST; SQL is the
        #: durable cache, this one spares it a query each time.
        self._keys: dict[str, tuple[ResolvedKey, float]] = {}
        self._fetching: dict[str, asyncio.Future[RemoteActor]] = {}

    async def actor(self, iri: str, *, refresh: bool = False) -> RemoteActor:
        iri = urldefrag(iri)[0]
        if not refresh:
            async with self.engine.connect() as conn:
                cached = await _cached(conn, iri)
            if cached is not None:
                return cached
        # Many POSTs from a new actor arrive at once: one fetch serves them all.
        pending = self._fetching.get(iri)
        if pending is None:
            pending = self._fetching[iri] = asyncio.ensure_future(self._fetch(iri))
            pending.add_done_callback(lambda _: self._fetching.pop(iri, None))
        return await asyncio.shield(pending)

    async def _fetch(self, iri: str) -> RemoteActor:
        _, doc = await self.client.get_json(iri, sign=self.sign)
        actor = actor_from_doc(doc, iri)
        values = {"host": actor.host, "username": actor.username, "inbox": actor.inbox,
                  "shared_inbox": actor.shared_inbox, "key_id": actor.key_id, "public_pem": actor.public_pem,
                  "doc": json.dumps(doc), "fetched_at": now_utc()}  # fmt: skip
        async with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            upsert = dialect.insert(remote_actors).values(iri=actor.iri, **values)
            await conn.execute(upsert.on_conflict_do_update(index_elements=["iri"], set_=values))
        return actor

    async def resolve_key(self, key_id: str, refresh: bool) -> ResolvedKey:
        """For signature checks: the key's owner and PEM, from cache unless `refresh`."""
        hit = self._keys.get(key_id)
        if hit is not None and not refresh and time.monotonic() - hit[1] < KEY_CACHE_SECONDS:
            return hit[0]
        resolved = await self._resolve_key(key_id, refresh)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[key_id] = (resolved, time.monotonic())
        return resolved

    async def _resolve_key(self, key_id: str, refresh: bool) -> ResolvedKey:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(remote_actors).where(remote_actors.c.key_id == key_id))).first()
        fresh = row is not None and row.public_pem and now_utc() - row.fetched_at < MAX_AGE
        if row is not None and row.public_pem and (fresh and not refresh or refresh and self._recently(key_id)):
            return ResolvedKey(key_id, row.iri, row.public_pem)
        actor = await self.actor(urldefrag(key_id)[0], refresh=True)
        if actor.key_id != key_id or not actor.public_pem:
            # The key may be its own document (GoToSocial style) that names its owner.
            _, key_doc = await self.client.get_json(urldefrag(key_id)[0], sign=self.sign)
            owner = ref(key_doc.get("owner"))
            if owner and owner != actor.iri:
                actor = await self.actor(owner, refresh=True)
            if actor.key_id != key_id or not actor.public_pem:
                raise SignatureError(f"key {key_id} is not published by actor {actor.iri}")
        return ResolvedKey(key_id, actor.iri, actor.public_pem)

    def _recently(self, key_id: str) -> bool:
        now = time.monotonic()
        if now - self._refetched.get(key_id, -REFETCH_EVERY) < REFETCH_EVERY:
            return True
        if len(self._refetched) > 10_000:
            self._refetched.clear()
        self._refetched[key_id] = now
        return False

    async def forget(self, iri: str) -> None:
        self._keys = {k: v for k, v in self._keys.items() if v[0].owner != iri}
        async with self.engine.begin() as conn:
            await conn.execute(delete(remote_actors).where(remote_actors.c.iri == iri))


def _from_row(row: Any) -> RemoteActor:
    return RemoteActor(row.iri, row.host, row.username, row.inbox, row.shared_inbox, row.key_id, row.public_pem)


async def _cached(conn: AsyncConnection, iri: str) -> RemoteActor | None:
    row = (await conn.execute(select(remote_actors).where(remote_actors.c.iri == iri))).first()
    return _from_row(row) if row is not None and now_utc() - row.fetched_at <= MAX_AGE else None


async def known(conn: AsyncConnection, iri: str) -> RemoteActor | None:
    """The cached actor, however old (for deliveries and for skipping unknown Deletes)."""
    row = (await conn.execute(select(remote_actors).where(remote_actors.c.iri == iri))).first()
    return _from_row(row) if row is not None else None
