"""WebFinger's pure parts: handles, the JRD Mastodon reads, host-meta."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from federation.errors import MalformedActivity
from federation.webfinger import host_meta_xml, is_activitypub_type, parse_handle, webfinger_document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@alice@node.example", ("alice", "node.example")),
        ("alice@node.example", ("alice", "node.example")),
        ("acct:alice@node.example", ("alice", "node.example")),
        ("ACCT:alice@Node.Example", ("alice", "node.example")),
        ("  @la_ruche_42@lyon.node.example  ", ("la_ruche_42", "lyon.node.example")),
        ("@alice@127.0.0.2:8000", ("alice", "127.0.0.2:8000")),
        ("acct:bob.smith@localhost:8080", ("bob.smith", "localhost:8080")),
        ("@amap@épicerie.example", ("amap", "xn--picerie-9xa.example")),
    ],
)
def test_parse_handle_accepts(text: str, expected: tuple[str, str]) -> None:
    assert parse_handle(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "@alice",
        "@node.example",
        "alice@",
        "@@alice@node.example",
        "alice@bob@node.example",
        "acct:@alice@node.example",
        "https://node.example/actors/alice",
        "alice@node.example/path",
        "alice@-node.example",
        "alice@node..example",
        "al ice@node.example",
        "alice@node.example:0",
        "alice@node.example:99999",
        "alice@node.example:",
        "alice@[::1]",
    ],
)
def test_parse_handle_refuses(text: str) -> None:
    with pytest.raises(MalformedActivity):
        parse_handle(text)


def test_jrd_has_the_links_mastodon_reads() -> None:
    jrd = webfinger_document(
        "acct:ruche@node.example",
        "https://node.example/actors/ruche",
        "https://node.example/initiatives/ruche",
        "https://node.example/authorize_interaction?uri={uri}",
        aliases=["https://node.example/initiatives/ruche"],
    )
    assert jrd == {
        "subject": "acct:ruche@node.example",
        "aliases": ["https://node.example/initiatives/ruche"],
        "links": [
            {"rel": "self", "type": "application/activity+json", "href": "https://node.example/actors/ruche"},
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": "https://node.example/initiatives/ruche",
            },
            {
                "rel": "http://ostatus.org/schema/1.0/subscribe",
                "template": "https://node.example/authorize_interaction?uri={uri}",
            },
        ],
    }
    json.dumps(jrd)  # served as is: must be plain JSON


def test_jrd_without_aliases_has_an_empty_list() -> None:
    jrd = webfinger_document("acct:a@h.example", "https://h.example/a", "https://h.example/p", "https://h.example/s")
    assert jrd["aliases"] == []


def test_host_meta_parses_and_carries_the_lrdd_template() -> None:
    xml = host_meta_xml("https://node.example/")
    root = ET.fromstring(xml)
    ns = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"
    assert root.tag == f"{ns}XRD"
    links = root.findall(f"{ns}Link")
    assert [(link.get("rel"), link.get("template")) for link in links] == [
        ("lrdd", "https://node.example/.well-known/webfinger?resource={uri}")
    ]


def test_host_meta_escapes_the_base_url() -> None:
    root = ET.fromstring(host_meta_xml('http://127.0.0.2:8000/a&b"c'))
    link = root.find("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")
    assert link is not None
    assert link.get("template") == 'http://127.0.0.2:8000/a&b"c/.well-known/webfinger?resource={uri}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/activity+json", True),
        ("Application/Activity+JSON; charset=utf-8", True),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', True),
        ("application/ld+json", False),
        ('application/ld+json; profile="https://example.org/other"', False),
        ("application/json", False),
        ("text/html", False),
        (None, False),
    ],
)
def test_activitypub_link_types(value: object, expected: bool) -> None:
    assert is_activitypub_type(value) is expected
