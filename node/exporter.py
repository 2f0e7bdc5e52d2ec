"""Whole-directory exports, streamed from SQL (never from the RDF store, which serve may hold)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import IO

from sqlalchemy.ext.asyncio import AsyncEngine

from node.convert.common import fmt_datetime
from node.convert.rdf import serialize
from node.records import Record
from node.storage import repo

CSV_COLUMNS = ("id", "kind", "name", "description", "themes", "latitude", "longitude", "insee",
               "street", "postal_code", "locality", "start", "end", "attributed_to", "category",
               "homepage", "url", "published", "updated", "license", "origin")  # fmt: skip
FORMATS = ("nquads", "turtle", "csv")


def csv_row(record: Record, origin: str) -> list[str]:
    loc = record.location
    address = loc.address if loc else None
    return [
        record.iri, record.kind, record.name, record.description, "|".join(record.themes),
        "" if not loc or loc.latitude is None else str(loc.latitude),
        "" if not loc or loc.longitude is None else str(loc.longitude),
        loc.insee if loc else "", address.street if address else "",
        address.postal_code if address else "", address.locality if address else "",
        fmt_datetime(record.start) if record.start else "", fmt_datetime(record.end) if record.end else "",
        record.attributed_to, record.category, record.homepage, record.url,
        fmt_datetime(record.published), fmt_datetime(record.updated), record.license, origin,
    ]  # fmt: skip


async def chunks(engine: AsyncEngine, fmt: str, size: int = 500, origin: str | None = None) -> AsyncIterator[bytes]:
    """The live records of every origin (or of one), a chunk at a time."""
    async with engine.connect() as conn:
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            async for stored, graph_of in repo.all_live(conn, origin=origin, batch=size):
                writer.writerow(csv_row(stored.record, graph_of))
                if buffer.tell() > 1 << 16:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode()
            return
        batch: list[str] = []
        graph = ""
        async for stored, graph_of in repo.all_live(conn, origin=origin, batch=size):
            if batch and (graph_of != graph or len(batch) >= size):
                yield serialize("".join(batch), fmt, graph)
                batch = []
            graph = graph_of
            batch.append(stored.ntriples)
        if batch:
            yield serialize("".join(batch), fmt, graph)


async def export(engine: AsyncEngine, fmt: str, out: IO[bytes]) -> None:
    async for chunk in chunks(engine, fmt):
        out.write(chunk)
    out.flush()
