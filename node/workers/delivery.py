"""Delivers activities: one durable row per (activity, inbox), claimed with a lease, signed
by the acting actor, retried with backoff for about two days. A host that keeps failing is
paused without holding up the others; a restart (even kill -9) loses nothing: an unfinished
row's lease runs out and it is sent again (receivers deduplicate by activity id)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, select, update
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
#: Outcomes are committed when this many are waiting, or this many seconds after the first.
RECORD_EVERY = 64
RECORD_WITHIN = 0.05
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
        self._pending: list[_Outcome] = []
        self._flusher: asyncio.Task[None] | None = None

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
                signing = await self._signing({row.activity_id for row in rows})
                outcomes = await asyncio.gather(*(self._guarded(row, signing) for row in rows))
                await self._flush()
                delivered += sum(1 for o in outcomes if o.ok)
        return delivered

    async def _signing(self, activity_ids: set[int]) -> dict[int, tuple[bytes, str, Any] | str]:
        """Each activity of the batch once: its body, and its actor's key id and key (or why not)."""
        out: dict[int, tuple[bytes, str, Any] | str] = {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(activities.c.id, activities.c.actor, activities.c.doc)
                                       .where(activities.c.id.in_(activity_ids)))).all()  # fmt: skip
            for row in rows:
                actor = await actors.get(conn, row.actor)
                if actor is None:
                    out[row.id] = f"{row.actor} is not an actor of this node"
                else:
                    out[row.id] = (row.doc.encode("utf-8"), actor.key_id, actors.private_key(self.config, actor))
        return out

    async def _guarded(self, row: Any, signing: dict[int, tuple[bytes, str, Any] | str]) -> _Outcome:
        async with self._slots, self._per_host[row.host]:
            outcome = await self._deliver(row, signing.get(row.activity_id, "the activity is gone"))
        # Outcomes are recorded in small groups: one commit for many inboxes, yet a crash
        # re-sends only what was in flight or finished in the last few milliseconds.
        self._pending.append(outcome)
        if len(self._pending) >= RECORD_EVERY:
            await self._flush()
        elif len(self._pending) == 1:
            self._flusher = asyncio.create_task(self._flush_soon())
        return outcome

    async def _flush_soon(self) -> None:
        await asyncio.sleep(RECORD_WITHIN)
        await self._flush()

    async def _flush(self) -> None:
        taken, self._pending = self._pending, []
        if taken:
            await self._record(taken)

    async def _deliver(self, row: Any, signing: tuple[bytes, str, Any] | str) -> _Outcome:
        status: int | None = None
        try:
            if await self.blocks.blocked(row.host):
                raise Refused(f"{row.host} is blocked")
            if isinstance(signing, str):
                raise Refused(signing)
            body, key_id, key = signing
            headers = sig.sign_request("POST", row.inbox, {"Content-Type": AS2_JSON, "Accept": AS2_JSON}, body,
                                       key_id, key)  # fmt: skip
            response = await self.client.request("POST", row.inbox, headers=headers, body=body,
                                                 follow_redirects=False)  # fmt: skip
            status = response.status
            raise_for_status(response)  # any non-2xx raises RemoteError
        except (RemoteError, Refused, NodeError, OSError) as exc:
            retry = None
            if isinstance(exc, RemoteError):
                status = exc.remote_status
                retry = next_attempt(row.attempts, status, exc.retry_after) if exc.retryable or status else None
            log.info("delivery %s to %s failed (attempt %s): %r", row.id, row.inbox, row.attempts, exc)
            return _Outcome(row, False, status, repr(exc)[:2000], retry)
        return _Outcome(row, True, status)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """A batch's outcomes in one transaction: SQLite commits once, not once per inbox."""
        now = now_utc()
        done = [{"row_id": o.row.id, "status": o.status} for o in outcomes if o.ok]
        async with self.engine.begin() as conn:
            if done:
                by_id = update(deliveries).where(deliveries.c.id == bindparam("row_id"))
                await conn.execute(by_id.values(state="done", last_status=bindparam("status"), locked_until=None,
                                                last_error=None), done)  # fmt: skip
            for o in (o for o in outcomes if not o.ok):
                values: dict[str, Any] = {"last_status": o.status, "last_error": o.error, "locked_until": None}
                values |= {"next_attempt_at": now + o.retry} if o.retry is not None else {"state": "failed"}
                await conn.execute(update(deliveries).where(deliveries.c.id == o.row.id).values(**values))
            by_host: dict[str, bool] = {}
            for o in outcomes:  # a host counts once per batch: any success clears its failures
                by_host[o.row.host] = by_host.get(o.row.host, False) or o.ok
            for host, ok in by_host.items():
                await _host_result(conn, host, ok=ok, now=now)


@dataclass(frozen=True)
class _Outcome:
    row: Any
    ok: bool
    status: int | None
    error: str | None = None
    retry: timedelta | None = None


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
