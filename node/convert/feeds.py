"""Feeds of a list of records: Atom 1.0, iCalendar, GeoJSON and CSV. Pure functions, no I/O.

Search (`/search.atom`, `.ics`, `.geojson`, `.csv`) and the matches of a need or an offer both
render through here, so a record reads the same in every reader, calendar and spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from node.convert.common import fmt_datetime

ATOM_NS = "http://www.w3.org/2005/Atom"
GEORSS_NS = "http://www.georss.org/georss"
PRODID = "-//Oscartes//Annuaire ESS//FR"
CSV_COLUMNS = ("id", "kind", "name", "summary", "start", "end", "lat", "lon", "place", "themes", "origin",
               "published", "updated")  # fmt: skip

# XML 1.0 forbids most C0 controls even escaped; a remote record's name may still carry them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FeedItem:
    iri: str  # the record's IRI (its page)
    kind: str  # initiative, event, need, offer, resource
    name: str
    summary: str
    published: datetime
    updated: datetime
    start: datetime | None = None
    end: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    place: str = ""  # a readable place line ("Massy (91377)")
    themes: tuple[str, ...] = ()
    origin: str = ""  # the named graph (dataset IRI) the record comes from


def _utc(value: datetime) -> datetime:
    # Naive values come from SQLite, which stores UTC without an offset.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    return fmt_datetime(_utc(value)) if value is not None else ""


# --- Atom (RFC 4287) ---------------------------------------------------------------------------


def _esc(text: str) -> str:
    return escape(_XML_INVALID.sub("", text), {'"': "&quot;"})


def _el(tag: str, text: str = "", **attrs: str) -> str:
    attributes = "".join(f' {name}="{_esc(value)}"' for name, value in attrs.items())
    return f"<{tag}{attributes}>{_esc(text)}</{tag}>" if text else f"<{tag}{attributes}/>"


def _entry(item: FeedItem) -> str:
    parts = [_el("id", item.iri), _el("title", item.name or item.iri),
             _el("link", rel="alternate", type="text/html", href=item.iri),
             _el("published", _iso(item.published)), _el("updated", _iso(item.updated))]  # fmt: skip
    if item.summary:
        parts.append(_el("summary", item.summary, type="text"))
    parts.append(_el("category", term=item.kind, label=item.kind))
    parts += [_el("category", term=theme) for theme in item.themes]
    if item.lat is not None and item.lon is not None:
        parts.append(_el("georss:point", f"{item.lat:.6f} {item.lon:.6f}"))
    return "<entry>" + "".join(parts) + "</entry>"


def atom(feed_id: str, title: str, self_url: str, updated: datetime, items: Sequence[FeedItem]) -> bytes:
    """An Atom 1.0 feed: one entry per item, its id and alternate link the record's IRI.

    The feed's `updated` is the later of `updated` and the newest entry, so it never goes back in time.
    """
    newest = max([_utc(updated), *(_utc(i.updated) for i in items)])
    # Atom requires an author on the feed unless every entry has one: the node that serves it.
    head = [_el("id", feed_id), _el("title", title), _el("updated", _iso(newest)),
            _el("link", rel="self", type="application/atom+xml", href=self_url),
            "<author>" + _el("name", urlsplit(self_url).hostname or title) + "</author>",
            _el("generator", "Oscartes")]  # fmt: skip
    body = "".join([*head, *(_entry(item) for item in items)])
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="{ATOM_NS}" xmlns:georss="{GEORSS_NS}">'
            f"{body}</feed>").encode()  # fmt: skip


# --- iCalendar (RFC 5545) ----------------------------------------------------------------------


def _ics_escape(text: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11): backslash, `;`, `,` and line breaks."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def _ics_stamp(value: datetime) -> str:
    return _utc(value).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> Iterator[bytes]:
    """Content lines of at most 75 octets, continued with CRLF + space, never splitting a UTF-8 character."""
    data = line.encode("utf-8")
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # a continuation byte: step back to the character start
            cut -= 1
        yield data[:cut] + b"\r\n"
        data = b" " + data[cut:]
    yield data + b"\r\n"


def ics(calendar_name: str, items: Sequence[FeedItem]) -> bytes:
    """An iCalendar stream: one VEVENT for each item that has a start, times in UTC."""
    lines = ["BEGIN:VCALENDAR", f"PRODID:{PRODID}", "VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{_ics_escape(calendar_name)}"]  # fmt: skip
    for item in items:
        if item.start is None:
            continue
        lines += ["BEGIN:VEVENT", f"UID:{_ics_escape(item.iri)}", f"DTSTAMP:{_ics_stamp(item.updated)}",
                  f"DTSTART:{_ics_stamp(item.start)}"]  # fmt: skip
        if item.end is not None and _utc(item.end) > _utc(item.start):
            lines.append(f"DTEND:{_ics_stamp(item.end)}")
        lines += [f"CREATED:{_ics_stamp(item.published)}", f"LAST-MODIFIED:{_ics_stamp(item.updated)}",
                  f"SUMMARY:{_ics_escape(item.name or item.iri)}"]  # fmt: skip
        if item.summary:
            lines.append(f"DESCRIPTION:{_ics_escape(item.summary)}")
        if item.place:
            lines.append(f"LOCATION:{_ics_escape(item.place)}")
        if item.lat is not None and item.lon is not None:
            lines.append(f"GEO:{item.lat:.6f};{item.lon:.6f}")
        if item.themes:
            lines.append("CATEGORIES:" + ",".join(_ics_escape(t) for t in item.themes))
        # URL is a URI value, not TEXT: it is written as is (an IRI never holds a line break).
        lines += [f"URL:{item.iri}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return b"".join(chunk for line in lines for chunk in _fold(line))


# --- GeoJSON (RFC 7946) and CSV ----------------------------------------------------------------


def _properties(item: FeedItem) -> dict[str, object]:
    props: dict[str, object] = {"id": item.iri, "kind": item.kind, "name": item.name, "summary": item.summary,
                                "url": item.iri, "place": item.place, "themes": list(item.themes),
                                "origin": item.origin, "published": _iso(item.published),
                                "updated": _iso(item.updated)}  # fmt: skip
    if item.start is not None:
        props["start"] = _iso(item.start)
    if item.end is not None:
        props["end"] = _iso(item.end)
    return props


def geojson(items: Sequence[FeedItem]) -> bytes:
    """A FeatureCollection of points ([lon, lat], WGS 84); items without a position are left out."""
    features = [
        {"type": "Feature", "id": item.iri,
         # Six decimals is about 10 cm: what RFC 7946 (11.2) calls enough.
         "geometry": {"type": "Point", "coordinates": [round(item.lon, 6), round(item.lat, 6)]},
         "properties": _properties(item)}  # fmt: skip
        for item in items
        if item.lat is not None and item.lon is not None
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode("utf-8")


def _cell(text: str) -> str:
    # A leading quote keeps a spreadsheet from running a remote record's name as a formula.
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_table(items: Sequence[FeedItem]) -> bytes:
    """RFC 4180 CSV (CRLF, quoted where needed), UTF-8, a header row then one row per item."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([
            item.iri, item.kind, _cell(item.name), _cell(item.summary), _iso(item.start), _iso(item.end),
            "" if item.lat is None else f"{item.lat:.6f}", "" if item.lon is None else f"{item.lon:.6f}",
            _cell(item.place), " ".join(item.themes), item.origin, _iso(item.published), _iso(item.updated),
        ])  # fmt: skip
    return out.getvalue().encode("utf-8")
