"""Content negotiation: which representation an Accept header asks for."""

from __future__ import annotations

from typing import Literal

Format = Literal["html", "as2", "jsonld", "json", "turtle", "ntriples", "nquads"]

AS2_PROFILE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MEDIA: dict[Format, str] = {
    "html": "text/html",
    "as2": "application/activity+json",
    "jsonld": "application/ld+json",
    "json": "application/json",
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
    "nquads": "application/n-quads",
}
_BY_TYPE: dict[str, Format] = {media: fmt for fmt, media in MEDIA.items()}
_BY_TYPE["application/xhtml+xml"] = "html"
#: ?format= values, for links and browsers.
BY_NAME: dict[str, Format] = {"html": "html", "as2": "as2", "jsonld": "jsonld", "json": "json",
                              "ttl": "turtle", "turtle": "turtle", "nt": "ntriples",
                              "ntriples": "ntriples", "nq": "nquads", "nquads": "nquads"}  # fmt: skip
RDF_FORMATS: tuple[Format, ...] = ("as2", "jsonld", "turtle", "ntriples", "nquads")


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


def choose(header: str | None, offered: tuple[Format, ...], default: Format = "html") -> Format | None:
    """The best offered format, or None (406). No Accept, or only */*, gets `default`."""
    if not header or not header.strip():
        return default
    best: tuple[float, int, int, Format] | None = None
    for media, q, position in parse_accept(header):
        if q <= 0:
            continue
        candidates: list[tuple[int, Format]]
        if media == "*/*":
            candidates = [(0, default)] if default in offered else []
        elif media.endswith("/*"):
            major = media[:-2]
            candidates = [(1, f) for f in offered if MEDIA[f].startswith(major + "/")]
        else:
            fmt = _BY_TYPE.get(media)
            candidates = [(2, fmt)] if fmt in offered else []
        for specificity, fmt in candidates:
            key = (q, specificity, -position, fmt)
            if best is None or key[:3] > best[:3]:
                best = key
    return best[3] if best else None
