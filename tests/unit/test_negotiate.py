from __future__ import annotations

import pytest

from node.negotiate import RDF_FORMATS, best, choose

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
        ("application/rdf+xml", "rdfxml"),
        ("application/trig", "trig"),
        ("application/n-quads,application/trig;q=0.95,text/turtle;q=0.6,application/rdf+xml;q=0.5", "nquads"),
        ("application/*", "as2"),  # the formats RDF tools read came later: a wildcard keeps AS2
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


SPARQL_RESULTS = {"json": ("application/sparql-results+json", "application/json"), "csv": ("text/csv",),
                  "tsv": ("text/tab-separated-values",), "html": ("text/html", "application/xhtml+xml")}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", "json"),  # an alias media type
        ("application/*", "json"),
        ("text/*", "csv"),  # the first text format that a wildcard may get: never the page
        ("text/html", "html"),  # only asked for by name
        ("*/*", "json"),
        ("image/*", None),
    ],
)
def test_best_with_aliases_and_wildcards(accept: str, expected: str | None) -> None:
    no_page = [f for f in SPARQL_RESULTS if f != "html"]
    assert best(accept, SPARQL_RESULTS, "json", wildcards=no_page) == expected


def test_best_gives_a_wildcard_the_default_when_it_fits() -> None:
    offered = {"csv": ("text/csv",), "tsv": ("text/tab-separated-values",)}
    assert best("text/*", offered, "tsv") == "tsv"
    assert best("text/*", offered, "csv") == "csv"
