"""The offline document loader and the pyld facade."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import rdflib

from vocab import AS2_CONTEXT, SECURITY_CONTEXT, jsonld
from vocab.jsonld import JsonLdSyntaxError
from vocab.loader import (
    CONTEXTS_DIR,
    VENDORED,
    VENDORED_PATHS,
    UnknownContextError,
    make_document_loader,
    own_context,
    vendored_context,
)

SHARED_CONTEXTS = Path("/work/shared/data/contexts")

# Every spelling the brief and the fediverse use, with the file it must give.
VARIANTS = [
    ("https://www.w3.org/ns/activitystreams", "activitystreams.jsonld"),
    ("http://www.w3.org/ns/activitystreams", "activitystreams.jsonld"),
    ("https://www.w3.org/ns/activitystreams/", "activitystreams.jsonld"),
    ("https://www.w3.org/ns/activitystreams#", "activitystreams.jsonld"),
    ("https://www.w3.org/ns/activitystreams.jsonld", "activitystreams.jsonld"),
    ("http://www.w3.org/ns/activitystreams.jsonld", "activitystreams.jsonld"),
    ("https://w3id.org/security/v1", "security-v1.jsonld"),
    ("http://w3id.org/security/v1", "security-v1.jsonld"),
    ("https://w3id.org/security/v1/", "security-v1.jsonld"),
    ("https://w3id.org/security/data-integrity/v1", "data-integrity-v1.jsonld"),
    ("https://w3id.org/security/data-integrity/v2", "data-integrity-v2.jsonld"),
    ("https://w3id.org/security/multikey/v1", "multikey-v1.jsonld"),
    ("https://w3id.org/identity/v1", "identity-v1.jsonld"),
    ("https://www.w3.org/ns/did/v1", "did-v1.jsonld"),
    ("https://purl.archive.org/socialweb/webfinger", "webfinger.jsonld"),
    ("http://schema.org", "schema.jsonld"),
    ("https://schema.org", "schema.jsonld"),
    ("http://schema.org/", "schema.jsonld"),
    ("https://schema.org/", "schema.jsonld"),
    ("http://schema.org#", "schema.jsonld"),
    ("https://schema.org/docs/jsonldcontext.jsonld", "schema.jsonld"),
    ("https://schema.org/docs/jsonldcontext.json", "schema.jsonld"),
]


def _file(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CONTEXTS_DIR / name).read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize(("url", "name"), VARIANTS)
def test_loader_serves_each_vendored_url_variant(url: str, name: str) -> None:
    remote = make_document_loader()(url, {})
    assert remote["document"] == _file(name)
    assert remote["documentUrl"] == url
    assert remote["contentType"] == "application/ld+json"
    assert remote["contextUrl"] is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/context.jsonld",
        "https://w3id.org/security/v2",
        "https://www.w3.org/ns/activitystreams-extended",
        "https://schema.org/Person",
        "http://joinmastodon.org/ns",
        "file:///etc/passwd",
    ],
)
def test_loader_refuses_unknown_urls(url: str) -> None:
    with pytest.raises(UnknownContextError) as raised:
        make_document_loader()(url, {})
    assert raised.value.url == url
    assert str(raised.value) == f"unknown remote JSON-LD context {url}: this node loads no context from the network"
    assert isinstance(raised.value, ValueError)


def test_every_vendored_file_is_listed_and_every_listed_file_exists() -> None:
    on_disk = {path.name for path in CONTEXTS_DIR.glob("*.jsonld")}
    by_path = {name for names in VENDORED_PATHS.values() for name in names}
    assert set(VENDORED) | by_path | {"toot.jsonld"} == on_disk
    readme = (CONTEXTS_DIR / "README.md").read_text(encoding="utf-8")
    for name in on_disk:
        assert f"`{name}`" in readme, f"{name} missing from contexts/README.md"


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_each_vendored_context_processes(name: str) -> None:
    url = VENDORED[name][0]
    doc = {"@context": url, "@id": "https://node.example/x", "@type": "https://node.example/T"}
    assert jsonld.expand(doc, loader=make_document_loader())[0]["@id"] == "https://node.example/x"


@pytest.mark.parametrize("name", ["activitystreams.jsonld", "security-v1.jsonld"])
def test_copies_of_shared_contexts_are_identical(name: str) -> None:
    if not SHARED_CONTEXTS.is_dir():
        pytest.skip("/work/shared/data/contexts is not on this machine")
    assert (CONTEXTS_DIR / name).read_bytes() == (SHARED_CONTEXTS / name).read_bytes()


def test_toot_context_has_mastodon_terms() -> None:
    toot = vendored_context("toot.jsonld")["@context"]
    assert toot["toot"] == "http://joinmastodon.org/ns#"
    assert toot["featured"] == {"@id": "toot:featured", "@type": "@id"}
    assert toot["focalPoint"] == {"@container": "@list", "@id": "toot:focalPoint"}


def test_vendored_context_refuses_paths() -> None:
    with pytest.raises(ValueError, match="not a vendored"):
        vendored_context("../context.jsonld")


def test_extra_documents_are_served_under_http_and_https() -> None:
    loader = make_document_loader({"https://node.example/ns/context.jsonld": own_context()})
    for url in ("https://node.example/ns/context.jsonld", "http://node.example/ns/context.jsonld"):
        assert loader(url, {})["document"] == own_context()
    with pytest.raises(UnknownContextError):
        loader("https://other-node.example/ns/context.jsonld", {})


def test_extra_cannot_replace_a_vendored_context() -> None:
    with pytest.raises(ValueError, match="vendored"):
        make_document_loader({"http://www.w3.org/ns/activitystreams": {"@context": {}}})


def test_loader_and_own_context_hand_out_copies() -> None:
    loader = make_document_loader()
    loader(AS2_CONTEXT, {})["document"]["@context"]["id"] = "changed"
    assert loader(AS2_CONTEXT, {})["document"]["@context"]["id"] == "@id"
    mine = own_context()
    mine["@context"]["osc"] = "changed"
    assert own_context()["@context"]["osc"] == "https://w3id.org/oscartes/ns#"


def test_unknown_context_surfaces_through_the_facade() -> None:
    doc = {"@context": ["https://www.w3.org/ns/activitystreams", "https://evil.example/ctx"], "type": "Note"}
    for operation in (
        lambda: jsonld.expand(doc, loader=make_document_loader()),
        lambda: jsonld.to_nquads(doc, loader=make_document_loader()),
        lambda: jsonld.compact(doc, AS2_CONTEXT, loader=make_document_loader()),
    ):
        with pytest.raises(UnknownContextError) as raised:
            operation()
        assert raised.value.url == "https://evil.example/ctx"


def test_unknown_compaction_context_is_refused() -> None:
    with pytest.raises(UnknownContextError):
        jsonld.compact({"@id": "https://node.example/x"}, "https://evil.example/ctx", loader=make_document_loader())


@pytest.mark.parametrize(
    "doc",
    [
        {"@context": {"term": {"@id": 5}}, "term": "x"},
        {"@context": AS2_CONTEXT, "@id": 5},
        {"@context": 42, "name": "x"},
        {"@context": AS2_CONTEXT, "type": {"nested": "object"}},
    ],
)
def test_invalid_json_ld_becomes_a_syntax_error(doc: dict[str, Any]) -> None:
    with pytest.raises(JsonLdSyntaxError) as raised:
        jsonld.expand(doc, loader=make_document_loader())
    assert not isinstance(raised.value, UnknownContextError)
    # the innermost pyld message, which says what is wrong, not "Could not expand input"
    assert str(raised.value).startswith("Invalid JSON-LD syntax;")


def test_nothing_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    doc = {
        "@context": [
            AS2_CONTEXT,
            SECURITY_CONTEXT,
            "https://w3id.org/security/data-integrity/v1",
            "https://schema.org",
        ],
        "id": "https://node.example/x",
        "type": "Person",
        "publicKey": {"id": "https://node.example/x#main-key", "publicKeyPem": "PEM"},
    }
    assert "https://w3id.org/security#publicKeyPem" in jsonld.to_nquads(doc, loader=make_document_loader())


def test_nquads_are_sorted_and_deduplicated() -> None:
    doc = {
        "@context": AS2_CONTEXT,
        "id": "https://node.example/n",
        "type": "Note",
        "name": ["b", "a", "a"],
    }
    text = jsonld.to_nquads(doc, loader=make_document_loader())
    lines = text.splitlines()
    assert lines == sorted(set(lines))
    assert len(lines) == 3
    assert text.endswith("\n")


def test_to_graph_merges_named_graphs() -> None:
    doc = {
        "@context": AS2_CONTEXT,
        "@id": "https://node.example/g",
        "@graph": [{"id": "https://node.example/n", "type": "Note", "name": "inside"}],
    }
    graph = jsonld.to_graph(doc, loader=make_document_loader())
    assert len(graph) == 2


def test_to_graph_matches_the_nquads() -> None:
    doc = {
        "@context": AS2_CONTEXT,
        "id": "https://node.example/e",
        "type": "Event",
        "name": ["Fête", {"@value": "Party", "@language": "en"}],
        "startTime": "2025-12-13T14:00:00+01:00",
        "latitude": 48.7,
    }
    graph = jsonld.to_graph(doc, loader=make_document_loader())
    parsed = rdflib.Graph().parse(data=jsonld.to_nquads(doc, loader=make_document_loader()), format="nt")
    assert set(graph) == set(parsed)
    assert rdflib.Literal("Fête") in set(graph.objects())
