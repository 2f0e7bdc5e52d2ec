from __future__ import annotations

import pytest

from node.negotiate import RDF_FORMATS, choose

OFFERED = ("html", *RDF_FORMATS, "json")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "html"),
        ("", "html"),
        ("*/*", "html"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        ("application/activity+json", "as2"),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', "jsonld"),
        ("application/activity+json, application/ld+json", "as2"),
        ("application/ld+json", "jsonld"),
        ("text/turtle", "turtle"),
        ("text/turtle;q=0.5, application/n-triples", "ntriples"),
        ("application/n-quads;q=0.9, text/turtle;q=0.1", "nquads"),
        ("text/*", "html"),
        ("application/json", "json"),
        ("image/png", None),
        ("text/turtle;q=0", None),
    ],
)
def test_choose(accept: str | None, expected: str | None) -> None:
    assert choose(accept, OFFERED) == expected


def test_specific_type_beats_wildcard_at_same_q() -> None:
    assert choose("*/*, text/turtle", OFFERED) == "turtle"


def test_broken_q_is_ignored_not_fatal() -> None:
    assert choose("text/turtle;q=abc, application/n-triples", OFFERED) == "ntriples"
