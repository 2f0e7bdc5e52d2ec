"""Applies durable index work rows to the RDF index.

A write commits its record and an index row in one SQL transaction, then asks this worker
to run. If the process dies in between, the row is still there and is applied at the next
start (or by the running server's worker when a CLI command wrote it).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from node import provenance
from node.config import Config
from node.convert.common import now_utc
from node.graph import RdfIndex, replace_graph, replace_record, write_records
from node.storage import repo
from node.storage.tables import origins
from node.workers import Worker
from vocab import schemes

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 12


def next_attempt(attempts: int) -> timedelta | None:
    """Exponential backoff with jitter, capped at an hour; None once the row should stop."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = min(2.0**attempts, 3600.0)
    return timedelta(seconds=base * random.uniform(0.5, 1.0))  # noqa: S311


class Indexer(Worker):
    def __init__(self, engine: AsyncEngine, index: RdfIndex, batch: int = 200, config: Config | None = None) -> None:
        super().__init__()
        self.engine, self.index, self.batch = engine, index, batch
        self.config = config

    async def run_once(self) -> int:
        """Apply every due row; returns how many were applied."""
        done = 0
        async with self.lock:
            while True:
                async with self.engine.begin() as conn:
                    jobs = await repo.claim_index_jobs(conn, now_utc(), self.batch, LEASE)
                if not jobs:
                    return done
                records = [j for j in jobs if j.job == "record"]
                if len(records) > 1 and await self._apply_records(records):
                    done += len(records)
                    jobs = [j for j in jobs if j.job != "record"]
                for job in jobs:
                    done += await self._apply(job)

    async def _apply_records(self, jobs: list[repo.IndexJob]) -> bool:
        """Many records in one SQL read and one store update (a copy of another node brings
        thousands at once). On any failure, False: the jobs are then applied one by one, so
        that the failing one carries its own error."""
        latest = {(j.graph, j.iri): j for j in jobs}
        try:
            async with self.engine.connect() as conn:
                triples = await repo.live_ntriples(conn, [iri for _, iri in latest])
            by_graph: dict[str, list[str]] = {}
            for graph, iri in latest:
                by_graph.setdefault(graph, []).append(iri)
            for graph, iris in by_graph.items():
                await asyncio.to_thread(write_records, self.index, graph, triples, iris)
        except Exception as exc:  # noqa: BLE001 - retried one by one
            log.warning("batched indexing of %s records failed, one by one now: %s", len(jobs), exc)
            return False
        async with self.engine.begin() as conn:
            await repo.finish_index_jobs(conn, [j.id for j in jobs])
        return True

    async def _apply(self, job: repo.IndexJob) -> int:
        try:
            if job.job == "reindex":
                await self._reindex(job.graph)
            elif job.job == "provenance":
                await self._provenance(job.graph)
            elif job.job == "schemes":
                chunk = schemes.schemes_ntriples()
                await asyncio.to_thread(replace_graph, self.index, job.graph, [chunk])
            else:
                async with self.engine.connect() as conn:
                    stored = await repo.get(conn, job.iri)
                ntriples = stored.ntriples if stored and stored.deleted is None else ""
                await asyncio.to_thread(replace_record, self.index, job.graph, job.iri, ntriples)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row and retried
            delay = next_attempt(job.attempts)
            log.warning("index job %s for %s failed (attempt %s): %s", job.id, job.iri, job.attempts, exc)
            async with self.engine.begin() as conn:
                await repo.fail_index_job(conn, job.id, repr(exc), now_utc() + delay if delay else None)
            return 0
        async with self.engine.begin() as conn:
            await repo.finish_index_job(conn, job.id)
        return 1

    async def _provenance(self, graph: str) -> None:
        if self.config is None:
            return
        config = self.config
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(origins).order_by(origins.c.graph))).all()
            modified = await repo.last_modified(conn, config.graph_iri)
        triples = provenance.describe(config.graph_iri, f"{config.base_url}/actor", config.license, modified, rows)
        await asyncio.to_thread(replace_graph, self.index, graph, [triples])

    async def _reindex(self, graph: str) -> None:
        """Rebuild one origin's graph from SQL, streaming: memory stays flat at any size."""
        await asyncio.to_thread(replace_graph, self.index, graph, [])
        async for chunk in self._graph_chunks(graph):
            await asyncio.to_thread(self.index.load, graph, chunk)

    async def _graph_chunks(self, graph: str, size: int = 2000) -> AsyncIterator[str]:
        async with self.engine.connect() as conn:
            buffer: list[str] = []
            async for stored, _origin in repo.all_live(conn, origin=graph):
                buffer.append(stored.ntriples)
                if len(buffer) >= size:
                    yield "".join(buffer)
                    buffer = []
            if buffer:
                yield "".join(buffer)
