"""Formatting shared by the AS2 and RDF renderings, so both spell values the same way."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FEP_8A8E = "https://w3id.org/fep/8a8e/"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
OM2_ONE = "http://www.ontology-of-units-of-measure.org/resource/om-2/one"

_DAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
_MONTHS = (
    "janv.", "févr.", "mars", "avr.", "mai", "juin",
    "juil.", "août", "sept.", "oct.", "nov.", "déc.",
)  # fmt: skip


def fmt_datetime(value: datetime) -> str:
    """ISO 8601 to the second, `Z` for UTC, the record's own offset otherwise."""
    text = value.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_datetime_or_none(value: object) -> datetime | None:
    """A date-time read from another server's document, or None when it is absent or bad."""
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a date-time needs a time zone offset (e.g. Z or +01:00)")
    return value


def canonical_double(value: float) -> str:
    """The JSON-LD canonical lexical form of a JSON number that is not an integer (1.5 -> 1.5E0)."""
    return re.sub(r"(\d)0*E\+?(-)?0*(\d)", r"\1E\2\3", f"{value:1.15E}")


def fold(text: str) -> str:
    """Lower-case, accent-free text: what full-text search compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def slugify(text: str, max_len: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", fold(text)).strip("_")
    return slug[:max_len].rstrip("_") or "x"


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _hour(value: datetime) -> str:
    return f"{value.hour}h" if value.minute == 0 else f"{value.hour}h{value.minute:02d}"


def human_when(start: datetime, end: datetime | None, tz_name: str) -> str:
    """"sam. 13 déc. 2025, 14h–18h": what a Mastodon reader sees of an event's date."""
    tz = zone(tz_name)
    start = start.astimezone(tz) if tz else start
    day = f"{_DAYS[start.weekday()]} {start.day} {_MONTHS[start.month - 1]} {start.year}"
    if end is None:
        return f"{day}, {_hour(start)}"
    end = end.astimezone(tz) if tz else end
    if end.date() == start.date():
        return f"{day}, {_hour(start)}–{_hour(end)}"
    end_day = f"{_DAYS[end.weekday()]} {end.day} {_MONTHS[end.month - 1]} {end.year}"
    return f"{day}, {_hour(start)} – {end_day}, {_hour(end)}"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
