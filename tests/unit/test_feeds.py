"""The feed renderers, each read back by an independent parser (icalendar, feedparser, csv, json)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from xml.etree import ElementTree

import feedparser
import icalendar

from node.convert.feeds import CSV_COLUMNS, FeedItem, atom, csv_table, geojson, ics

BASE = "https://a.example/"
T0 = datetime(2025, 12, 13, 14, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))

EVENT = FeedItem(
    iri=BASE + "events/repair-cafe",
    kind="event",
    name="Repair café, à Massy; apportez vos objets",
    summary="Réparer ensemble.\nLigne deux, avec \\ une barre; et des virgules, " + "très longue " * 12,
    published=T0 - timedelta(days=10),
    updated=T0 - timedelta(days=1),
    start=datetime(2025, 12, 20, 14, 0, tzinfo=PARIS),
    end=datetime(2025, 12, 20, 18, 0, tzinfo=PARIS),
    lat=48.7306,
    lon=2.2711,
    place="Massy (91377)",
    themes=("https://w3id.org/oscartes/vocab/themes/repair",),
    origin=BASE + "graph",
)
INITIATIVE = FeedItem(
    iri=BASE + "initiatives/epicerie",
    kind="initiative",
    name="=HYPERLINK(\"x\") Épicerie solidaire",
    summary="",
    published=T0 - timedelta(days=30),
    updated=T0,
    place="Évry",
)


def test_ics_parses_back_with_utc_times_escapes_and_folding() -> None:
    body = ics("Événements — Essonne", [EVENT, INITIATIVE])
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    for line in body.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # folding never cuts a character in two
    calendar = icalendar.Calendar.from_ical(body)
    assert str(calendar["X-WR-CALNAME"]) == "Événements — Essonne"
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    events = calendar.walk("VEVENT")
    assert len(events) == 1  # the initiative has no start
    event = events[0]
    assert str(event["UID"]) == EVENT.iri and str(event["URL"]) == EVENT.iri
    assert event.decoded("DTSTART") == datetime(2025, 12, 20, 13, 0, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2025, 12, 20, 17, 0, tzinfo=UTC)
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert event.decoded("DTSTAMP") == EVENT.updated
    assert str(event["SUMMARY"]) == EVENT.name
    assert str(event["DESCRIPTION"]) == EVENT.summary
    assert str(event["LOCATION"]) == "Massy (91377)"
    assert (event["GEO"].latitude, event["GEO"].longitude) == (48.7306, 2.2711)


def test_ics_of_no_events_is_still_a_calendar() -> None:
    calendar = icalendar.Calendar.from_ical(ics("vide", []))
    assert calendar.walk("VEVENT") == []


def test_atom_is_valid_and_parses_back() -> None:
    body = atom("tag:a.example,2025:search?kind=event", "Recherche", BASE + "search.atom?kind=event", T0,
                [EVENT, INITIATIVE])  # fmt: skip
    root = ElementTree.fromstring(body)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    assert body.startswith(b"<?xml") and b"<feed xmlns=" in body  # unprefixed Atom elements
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.id == "tag:a.example,2025:search?kind=event"
    assert parsed.feed.title == "Recherche"
    assert [link.href for link in parsed.feed.links if link.rel == "self"] == [BASE + "search.atom?kind=event"]
    assert parsed.feed.updated_parsed[:6] == T0.timetuple()[:6]
    assert parsed.feed.author
    first, second = parsed.entries
    assert first.id == EVENT.iri and first.link == EVENT.iri
    assert first.title == EVENT.name and first.summary == EVENT.summary.strip()  # feedparser strips
    assert {t.term for t in first.tags} == {"event", *EVENT.themes}
    assert first.published_parsed[:6] == EVENT.published.timetuple()[:6]
    assert first.updated_parsed[:6] == EVENT.updated.timetuple()[:6]
    assert first.where["coordinates"] == (2.2711, 48.7306)
    assert second.id == INITIATIVE.iri and "summary" not in second


def test_atom_drops_characters_xml_cannot_hold() -> None:
    bad = FeedItem(iri=BASE + "x", kind="offer", name="a\x00b\x1bc", summary="", published=T0, updated=T0)
    parsed = feedparser.parse(atom("urn:x", "t", BASE + "s.atom", T0, [bad]))
    assert not parsed.bozo and parsed.entries[0].title == "abc"


def test_geojson_points_are_lon_lat_and_unplaced_items_skipped() -> None:
    collection = json.loads(geojson([EVENT, INITIATIVE]))
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    assert feature["type"] == "Feature" and feature["id"] == EVENT.iri
    assert feature["geometry"] == {"type": "Point", "coordinates": [2.2711, 48.7306]}
    props = feature["properties"]
    assert props["kind"] == "event" and props["name"] == EVENT.name and props["themes"] == list(EVENT.themes)
    assert props["start"] == "2025-12-20T13:00:00Z" and props["end"] == "2025-12-20T17:00:00Z"


def test_csv_has_a_header_and_one_row_per_item() -> None:
    body = csv_table([EVENT, INITIATIVE])
    text = body.decode("utf-8")
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["id"] for r in rows] == [EVENT.iri, INITIATIVE.iri]
    assert rows[0]["summary"] == EVENT.summary  # newlines and commas survive quoting
    assert rows[0]["lat"] == "48.730600" and rows[0]["start"] == "2025-12-20T13:00:00Z"
    assert rows[1]["lat"] == "" and rows[1]["start"] == ""
    assert rows[1]["name"].startswith("'=")  # not run as a formula by a spreadsheet
