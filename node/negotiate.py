"""Content negotiation: which representation an Accept header asks for."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal, TypeVar

Format = Literal["html", "as2", "jsonld", "json", "turtle", "ntriples", "nquads", "trig", "rdfxml"]

AS2_PROFILE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MEDIA: dict[Format, str] = {
    "html": "text/html",
    "as2": "application/activity+json",
    "jsonld": "application/ld+json",
    "json": "application/json",
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
    "nquads": "application/n-quads",
    "trig": "application/trig",
    "rdfxml": "application/rdf+xml",
}
_TYPES: dict[Format, tuple[str, ...]] = {fmt: (media,) for fmt, media in MEDIA.items()}
_TYPES["html"] = ("text/html", "application/xhtml+xml")
#: ?format= values, for links and browsers.
BY_NAME: dict[str, Format] = {"html": "html", "as2": "as2", "jsonld": "jsonld", "json": "json",
                              "ttl": "turtle", "turtle": "turtle", "nt": "ntriples",
                              "ntriples": "ntriples", "nq": "nquads", "nquads": "nquads", "trig": "trig",
                              "rdf": "rdfxml", "rdfxml": "rdfxml"}  # fmt: skip
F = TypeVar("F", bound=str)
#: Formats that RDF tools read, in order of preference: a wildcard (`application/*`) gets the first.
RDF_FORMATS: tuple[Format, ...] = ("as2", "jsonld", "turtle", "ntriples", "nquads", "trig", "rdfxml")
#: The ones written from triples (the JSON ones are the stored documents, compacted).
TRIPLE_FORMATS: tuple[Format, ...] = ("turtle", "ntriples", "nquads", "trig", "rdfxml")


def parse_accept(header: str) -> list[tuple[str, float, int]]:
    """(media type, q, position); parameters other than q are kept for the AS2 profile check."""
    items = []
    for position, part in enumerate(header.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        rest = []
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
            else:
                rest.append(param)
        if media:
            items.append((media.lower(), q, position))
    return items


def best(header: str | None, offered: Mapping[F, Sequence[str]], default: F,
         wildcards: Collection[F] | None = None) -> F | None:  # fmt: skip
    """The offered format that best fits Accept, or None (406).

    `offered` maps each format, in order of preference, to its media types (the first is the one
    answered). No Accept, or only */*, gets `default`; `type/*` gets `default` if it fits, else the
    first format of `wildcards` (all offered ones unless given) that does. Higher q wins, then the
    more specific range, then the earlier one.
    """
    if not header or not header.strip():
        return default
    by_wildcard = [f for f in offered if wildcards is None or f in wildcards]
    by_wildcard.sort(key=lambda f: f != default)
    best_key: tuple[float, int, int] | None = None
    chosen: F | None = None
    for media, q, position in parse_accept(header):
        if q <= 0:
            continue
        fmt: F | None
        if media == "*/*":
            specificity, fmt = 0, default if default in offered else None
        elif media.endswith("/*"):
            major = media[:-1]
            specificity, fmt = 1, next((f for f in by_wildcard if offered[f][0].startswith(major)), None)
        else:
            specificity, fmt = 2, next((f for f, types in offered.items() if media in types), None)
        key = (q, specificity, -position)
        if fmt is not None and (best_key is None or key > best_key):
            best_key, chosen = key, fmt
    return chosen


def choose(header: str | None, offered: tuple[Format, ...], default: Format = "html") -> Format | None:
    """The best offered format, or None (406). No Accept, or only */*, gets `default`."""
    return best(header, {f: _TYPES[f] for f in offered}, default)
