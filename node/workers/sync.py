"""Copies followed nodes' directories: the bootstrap, then a reconciliation every
`reconcile_seconds` that catches what live activities missed (a node that was down).

The origin's row is the durable work: its cursor (the next page to ask for) is written in
the same transaction as the page's records, so an interrupted copy resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.activity import first_type, host
from federation.errors import NodeError, TooLarge
from federation.fetch import GuardedClient
from node import ingest
from node.config import Config
from node.convert.common import fmt_datetime, now_utc, parse_datetime_or_none
from node.origins import discover, enqueue_provenance, register, relayed_subsets
from node.origins import get as get_origin
from node.remote import Remote
from node.storage.tables import origins
from node.workers import Worker, claim
from node.workers.indexer import next_attempt

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
#: Reconciliation starts this far before the last change seen: writes that committed late
#: (a long transaction at the origin) are not skipped; seeing a record again changes nothing.
OVERLAP = timedelta(minutes=2)
ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


class SyncError(NodeError):
    title = "Cannot copy a node's directory"
    status = 502


def since_url(changes: str, when: datetime | None, limit: int = 200) -> str:
    start = fmt_datetime(when - OVERLAP) if when else "1970-01-01T00:00:00Z"
    return f"{changes}?since={quote(start)}&limit={limit}"


def with_smaller_page(url: str) -> str | None:
    """The same page asked for with half as many records: long records may make a page
    larger than the fetch limit. None once a page of one record is still too large."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    limit = int(query.get("limit", "200")) if query.get("limit", "200").isdigit() else 200
    if limit <= 1:
        return None
    query["limit"] = str(limit // 2)
    return urlunsplit(parts._replace(query=urlencode(query)))


def read_changes_page(page: Mapping[str, Any], origin_host: str) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items and the next page's URL of a change-stream page; refuses a next page elsewhere."""
    if first_type(page.get("type")) not in ("OrderedCollectionPage", "CollectionPage"):
        raise SyncError(f"a change-stream page is an OrderedCollectionPage, not {page.get('type')!r}")
    items = page.get("orderedItems", page.get("items", []))
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise SyncError("a change-stream page lists its records as embedded objects")
    following = page.get("next")
    if following is not None and (not isinstance(following, str) or host(following) != origin_host):
        raise SyncError(f"the next page {following!r} is not on {origin_host}")
    return items, following


Page = tuple[list[Mapping[str, Any]], str | None, Mapping[str, Any]]


class Syncer(Worker):
    poll_seconds = 5.0

    def __init__(self, config: Config, engine: AsyncEngine, client: GuardedClient, remote: Remote,
                 on_written: Callable[[], None] | None = None, max_pages: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.config, self.engine, self.client, self.remote = config, engine, client, remote
        self.on_written, self.max_pages = on_written, max_pages
        self._reader: ProcessPoolExecutor | None = None

    async def recover(self) -> None:
        """At start: leases of a dead process are released, and every live copy is reconciled
        at once (this node may have been down while its origins changed)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(origins).where(origins.c.state == "pending").values(
                locked_until=None, next_attempt_at=now_utc()))  # fmt: skip

    async def run_once(self) -> int:
        done = 0
        async with self.lock:
            async with self.engine.begin() as conn:
                rows = await claim(conn, origins, now_utc(), 10, LEASE, ("id",), origins.c.policy != "blocked")
            for row in rows:
                done += await self._sync(row.id)
        return done

    async def _sync(self, origin_id: int) -> int:
        async with self.engine.connect() as conn:
            row = (await conn.execute(origins.select().where(origins.c.id == origin_id))).first()
        if row is None:
            return 0
        origin = ingest.Origin.of(row)
        url: str | None = None
        written = pages = 0
        try:
            await self._learn_relayed(row)
            # Reading a page (JSON-LD, SHACL) takes most of the time: page k+1 is read in the
            # reader process while page k is stored here, and page k+2 fetched meanwhile.
            first = row.cursor or since_url(row.changes, None, self.config.changes_page_size)
            current = await self._fetch(first, row.host)
            reading = self._read(current[0], current[2], origin, multi_page=current[1] is not None)
            while True:
                items, following, page = current
                pages += 1
                ahead = None
                if following is not None and pages < self.max_pages:
                    ahead = await self._fetch(following, row.host)
                incoming, refused = await reading
                if ahead is not None:
                    reading = self._read(ahead[0], ahead[2], origin, multi_page=True)
                written += await self._store(row, origin, incoming, refused, page, following)
                url = following
                if ahead is None:
                    break
                current = ahead
        except NodeError as exc:
            return await self._failed(row, exc.detail)
        except Exception as exc:
            log.exception("copying %s failed", row.graph)
            return await self._failed(row, repr(exc))
        more = url is not None  # stopped at max_pages: due again at once
        async with self.engine.begin() as conn:
            wait = timedelta(0) if more else timedelta(seconds=self.config.reconcile_seconds)
            await conn.execute(update(origins).where(origins.c.id == row.id).values(
                state="pending", attempts=0, locked_until=None, last_error=None, next_attempt_at=now_utc() + wait,
                sync_state="bootstrap" if more else "live"))  # fmt: skip
            await enqueue_provenance(conn, self.config, now_utc())
        if more:
            self.kick()
        return written

    async def _learn_relayed(self, row: Any) -> None:
        """The origins a followed node relays (its VoID): copied from themselves, so that
        nothing relayed is taken on the relaying node's word."""
        if not row.followed:
            return
        _, void = await self.client.get_json(row.graph, accept="application/ld+json", sign=self.remote.sign)
        for graph, actor in relayed_subsets(void, row.graph):
            if graph == self.config.graph_iri:
                continue
            async with self.engine.connect() as conn:
                known = await get_origin(conn, graph)
            if known is not None:
                continue
            try:
                found = await discover(self.client, self.remote, actor)
            except NodeError as exc:
                log.warning("%s relays %s, which cannot be copied: %s", row.graph, graph, exc.detail)
                continue
            if found.graph != graph:
                log.warning("%s relays %s, but %s publishes %s", row.graph, graph, actor, found.graph)
                continue
            async with self.engine.begin() as conn:
                await register(conn, found, now_utc(), via=row.graph)
            self.kick()

    async def _fetch(self, url: str, origin_host: str) -> Page:
        while True:
            try:
                _, page = await self.client.get_json(url, accept=ACCEPT, sign=self.remote.sign)
            except TooLarge:
                smaller = with_smaller_page(url)
                if smaller is None:
                    raise
                url = smaller
                continue
            items, following = read_changes_page(page, origin_host)
            return items, following, page

    def _read(self, items: list[Mapping[str, Any]], page: Mapping[str, Any], origin: ingest.Origin, *,
              multi_page: bool) -> asyncio.Future[tuple[list[ingest.Incoming], list[tuple[str, str]]]]:  # fmt: skip
        """A page's reading, as a future: in the reader process for a copy of many pages, in a
        thread for the page or two of a reconciliation."""
        args = (items, page.get("@context"), origin, self.config, now_utc())
        loop = asyncio.get_running_loop()
        if multi_page:
            if self._reader is None:
                self._reader = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            return loop.run_in_executor(self._reader, ingest.read_page, *args)
        return asyncio.ensure_future(asyncio.to_thread(ingest.read_page, *args))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.shutdown(cancel_futures=True)
            self._reader = None

    async def _store(self, row: Any, origin: ingest.Origin, incoming: list[ingest.Incoming],
                     refused: list[tuple[str, str]], page: Mapping[str, Any],
                     following: str | None) -> int:  # fmt: skip
        now = now_utc()
        async with self.engine.begin() as conn:
            outcome = await ingest.store(conn, origin, incoming, now, refused)
            current: Any = (await conn.execute(origins.select().where(origins.c.id == row.id))).first()
            until = parse_datetime_or_none(page.get("osc:changedUntil"))
            newest = max([d for d in (until, current.modified_at) if d is not None], default=None)
            # Within the page sequence the origin's own cursor; after the last page, a date.
            cursor = following or since_url(row.changes, newest, self.config.changes_page_size)
            await conn.execute(update(origins).where(origins.c.id == row.id).values(
                cursor=cursor, retrieved_at=now, modified_at=newest))  # fmt: skip
        if (outcome.written or outcome.deleted) and self.on_written is not None:
            self.on_written()
        return len(outcome.written) + len(outcome.deleted)

    async def _failed(self, row: Any, error: str) -> int:
        log.warning("copying %s failed (attempt %s): %s", row.graph, row.attempts, error)
        delay = next_attempt(row.attempts) or timedelta(hours=1)  # a followed node is never given up on
        async with self.engine.begin() as conn:
            await conn.execute(update(origins).where(origins.c.id == row.id).values(
                state="pending", locked_until=None, last_error=error[:2000],
                next_attempt_at=now_utc() + delay))  # fmt: skip
        return 0
