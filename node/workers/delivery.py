"""Delivers activities: one durable row per (activity, inbox), claimed with a lease, signed
by the acting actor, retried with backoff for about two days. A host that keeps failing is
paused without holding up the others; a restart (even kill -9) loses nothing: an unfinished
row's lease runs out and it is sent again (receivers deduplicate by activity id)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from federation import signatures as sig
from federation.delivery import host_pause, next_attempt
from federation.errors import NodeError, Refused, RemoteError
from federation.fetch import GuardedClient, raise_for_status
from node import actors
from node.blocks import DomainBlocks
from node.config import Config
from node.convert.common import now_utc
from node.storage.tables import activities, deliveries, hosts
from node.workers import Worker, claim

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
AS2_JSON = "application/activity+json"


class Deliverer(Worker):
    poll_seconds = 5.0

    def __init__(self, config: Config, engine: AsyncEngine, client: GuardedClient, *, concurrency: int = 16,
                 per_host: int = 2, batch: int = 200) -> None:  # fmt: skip
        super().__init__()
        self.config, self.engine, self.client = config, engine, client
        self.blocks = DomainBlocks(engine)
        self.batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))

    async def recover(self) -> int:
        """At start: rows a killed process had claimed are due again now, not when its lease ends.
        One server owns delivery per node; what it had in flight may arrive twice, and receivers
        deduplicate by activity id."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(deliveries).where(deliveries.c.state == "pending",
                                                                 deliveries.c.locked_until.is_not(None))
                                        .values(locked_until=None))  # fmt: skip
        return int(result.rowcount)

    async def _claim(self) -> list[Any]:
        now = now_utc()
        paused = exists().where(and_(hosts.c.host == deliveries.c.host, hosts.c.unavailable_until > now))
        async with self.engine.begin() as conn:
            return await claim(conn, deliveries, now, self.batch, LEASE,
                               ("id", "activity_id", "inbox", "host", "attempts"), ~paused)  # fmt: skip

    async def run_once(self) -> int:
        """Send every due row (batch after batch); returns how many were delivered."""
        delivered = 0
        async with self.lock:
            while rows := await self._claim():
                results = await asyncio.gather(*(self._guarded(row) for row in rows))
                delivered += sum(results)
        return delivered

    async def _guarded(self, row: Any) -> int:
        async with self._slots, self._per_host[row.host]:
            return await self._deliver(row)

    async def _deliver(self, row: Any) -> int:
        status: int | None = None
        retry_after: float | None = None
        try:
            if await self.blocks.blocked(row.host):
                raise Refused(f"{row.host} is blocked")
            async with self.engine.connect() as conn:
                activity = (await conn.execute(select(activities).where(activities.c.id == row.activity_id))).one()
                actor = await actors.get(conn, activity.actor)
            if actor is None:
                raise Refused(f"{activity.actor} is not an actor of this node")
            body = activity.doc.encode("utf-8")
            headers = sig.sign_request("POST", row.inbox, {"Content-Type": AS2_JSON, "Accept": AS2_JSON}, body,
                                       actor.key_id, actors.private_key(self.config, actor))  # fmt: skip
            response = await self.client.request("POST", row.inbox, headers=headers, body=body,
                                                 follow_redirects=False)  # fmt: skip
            status = response.status
            raise_for_status(response)  # any non-2xx raises RemoteError
        except (RemoteError, Refused, NodeError, OSError) as exc:
            if isinstance(exc, RemoteError):
                status, retry_after = exc.remote_status, exc.retry_after
                retry = next_attempt(row.attempts, status, retry_after) if exc.retryable or status else None
            else:
                retry = None
            await self._failed(row, status, repr(exc), retry)
            return 0
        await self._done(row, status)
        return 1

    async def _done(self, row: Any, status: int | None) -> None:
        now = now_utc()
        async with self.engine.begin() as conn:
            await conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(
                state="done", last_status=status, locked_until=None, last_error=None))  # fmt: skip
            await _host_result(conn, row.host, ok=True, now=now)

    async def _failed(self, row: Any, status: int | None, error: str, retry: timedelta | None) -> None:
        now = now_utc()
        log.info("delivery %s to %s failed (attempt %s): %s", row.id, row.inbox, row.attempts, error)
        values: dict[str, Any] = {"last_status": status, "last_error": error[:2000], "locked_until": None}
        if retry is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = now + retry
        async with self.engine.begin() as conn:
            await conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
            await _host_result(conn, row.host, ok=False, now=now)


async def _host_result(conn: Any, host: str, *, ok: bool, now: Any) -> None:
    row = (await conn.execute(select(hosts).where(hosts.c.host == host))).first()
    if row is None:
        await conn.execute(hosts.insert().values(host=host, failures=0 if ok else 1,
                                                 last_success_at=now if ok else None))  # fmt: skip
        return
    if ok:
        await conn.execute(update(hosts).where(hosts.c.host == host).values(
            failures=0, unavailable_until=None, last_success_at=now))  # fmt: skip
        return
    failures = row.failures + 1
    pause = host_pause(failures)
    await conn.execute(update(hosts).where(hosts.c.host == host).values(
        failures=failures, unavailable_until=now + pause if pause else None))  # fmt: skip
