"""The contexts other fediverse servers send, read offline; and what is read when a context
cannot be had: the document as compact AS2, as Mastodon reads it, with the reason kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vocab import AS2_CONTEXT
from vocab.jsonld import JsonLdSyntaxError, UnknownContextError, as_compact_as2, expand, expand_leniently
from vocab.loader import VENDORED_PATHS, is_known, make_document_loader, vendored_context

AS = "https://www.w3.org/ns/activitystreams#"
SC = "http://schema.org#"  # Mobilizon's spelling of schema.org
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fediverse"
LITEPUB = "https://litepub.social/litepub/context.jsonld"
#: Mobilizon's own terms, as lib/federation/activity_pub/utils.ex `make_json_ld_header` writes them.
MOBILIZON_TERMS = {
    "sc": "http://schema.org#", "ical": "http://www.w3.org/2002/12/cal/ical#", "pt": "https://joinpeertube.org/ns#",
    "Hashtag": "as:Hashtag", "category": "sc:category", "uuid": "sc:identifier",
    "maximumAttendeeCapacity": "sc:maximumAttendeeCapacity",
    "location": {"@id": "sc:location", "@type": "sc:Place"}, "PostalAddress": "sc:PostalAddress",
    "address": {"@id": "sc:address", "@type": "sc:PostalAddress"}, "addressCountry": "sc:addressCountry",
    "addressRegion": "sc:addressRegion", "postalCode": "sc:postalCode", "addressLocality": "sc:addressLocality",
    "streetAddress": "sc:streetAddress", "mz": "https://joinmobilizon.org/ns#",
    "repliesModerationOptionType": {"@id": "mz:repliesModerationOptionType", "@type": "rdfs:Class"},
    "repliesModerationOption": {"@id": "mz:repliesModerationOption", "@type": "mz:repliesModerationOptionType"},
    "commentsEnabled": {"@type": "sc:Boolean", "@id": "pt:commentsEnabled"},
    "joinModeType": {"@id": "mz:joinModeType", "@type": "rdfs:Class"},
    "joinMode": {"@id": "mz:joinMode", "@type": "mz:joinModeType"},
    "anonymousParticipationEnabled": {"@id": "mz:anonymousParticipationEnabled", "@type": "sc:Boolean"},
    "participationMessage": {"@id": "mz:participationMessage", "@type": "sc:Text"},
}  # fmt: skip


def mobilizon_create() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "mobilizon-create-event.json").read_text(encoding="utf-8"))
    return doc


def _first(node: dict[str, Any], iri: str) -> Any:
    return node[iri][0].get("@value", node[iri][0].get("@id"))


@pytest.mark.parametrize("url", [LITEPUB, "http://litepub.social/litepub/context.jsonld"])
def test_litepub_is_vendored(url: str) -> None:
    assert is_known(url)
    assert make_document_loader()(url, {})["document"] == vendored_context("litepub.jsonld")


@pytest.mark.parametrize("context", [
    ["https://www.w3.org/ns/activitystreams", LITEPUB, {"@language": "und"}],
    ["https://www.w3.org/ns/activitystreams", LITEPUB, MOBILIZON_TERMS],
])  # fmt: skip
def test_a_mobilizon_create_expands_offline(context: Any) -> None:
    doc = {**mobilizon_create(), "@context": context}
    expansion = expand_leniently(doc, loader=make_document_loader())
    assert expansion.set_aside is None, "every context Mobilizon names is vendored"
    activity = expansion.nodes[0]
    assert activity["@type"] == [AS + "Create"]
    event = activity[AS + "object"][0]
    assert event["@type"] == [AS + "Event"] and _first(event, AS + "name") == "My first event"


def test_the_fixture_context_gives_mobilizon_terms_their_iris() -> None:
    event = expand(mobilizon_create(), loader=make_document_loader())[0][AS + "object"][0]
    assert _first(event, SC + "identifier") == "109ccdfd-ee3e-46e1-a877-6c228763df0c"
    assert _first(event, SC + "category") == "TODO remove me"


def test_a_gancio_create_without_context_is_read_as_as2() -> None:
    doc = json.loads((FIXTURES / "gancio-create-event.json").read_text(encoding="utf-8"))
    expansion = expand_leniently(doc, loader=make_document_loader())
    assert expansion.set_aside is None, "AS2 applies to a document without its context: nothing set aside"
    event = expansion.nodes[0][AS + "object"][0]
    assert event["@type"] == [AS + "Event"] and _first(event, AS + "startTime") == "2021-07-14T17:30:57+02:00"


@pytest.mark.parametrize("host", ["pleroma.example", "akkoma.example", "127.0.0.9:4000"])
def test_pleroma_and_akkoma_schemas_are_read_on_any_host(host: str) -> None:
    url = f"https://{host}/schemas/litepub-0.1.jsonld"
    assert is_known(url)
    note = {"@context": ["https://www.w3.org/ns/activitystreams", url, {"@language": "und"}],
            "id": f"https://{host}/objects/1", "type": "Note", "content": "salut", "sensitive": False,
            "directMessage": False, "nonAnonymous": True, "quote": f"https://{host}/objects/0"}  # fmt: skip
    node = expand(note, loader=make_document_loader())[0]
    assert node[AS + "sensitive"] == [{"@value": False}]
    assert node["http://litepub.social/ns#directMessage"] == [{"@value": False}]
    assert node["http://smithereen.software/ns#nonAnonymous"] == [{"@value": True}]  # Pleroma's term
    assert node["https://w3id.org/fep/044f#quote"] == [{"@id": f"https://{host}/objects/0"}]  # Akkoma's


def _terms(name: str) -> dict[str, Any]:
    inner = vendored_context(name)["@context"]
    return {k: v for part in inner if isinstance(part, dict) for k, v in part.items()}


def test_pleroma_and_akkoma_never_define_a_term_two_ways() -> None:
    """Why reading their two copies as one context changes the meaning of neither."""
    (path, names), = VENDORED_PATHS.items()
    assert path == "/schemas/litepub-0.1.jsonld"
    first, second = (_terms(n) for n in names)
    assert {t: (first[t], second[t]) for t in first.keys() & second.keys() if first[t] != second[t]} == {}


def test_a_context_no_one_vendors_is_set_aside_for_compact_as2() -> None:
    unknown = "https://contexts.example/future.jsonld"
    doc = {"@context": ["https://www.w3.org/ns/activitystreams", unknown], "id": "https://a.example/follows/1",
           "type": "Follow", "actor": "https://a.example/users/ann", "object": "https://b.example/initiatives/x",
           "instrument": {"@context": {"x": "https://x.example/"}, "type": "Service",
                          "name": "Ann's server"}}  # fmt: skip
    expansion = expand_leniently(doc, loader=make_document_loader())
    assert isinstance(expansion.set_aside, UnknownContextError) and expansion.set_aside.url == unknown
    follow = expansion.nodes[0]
    assert follow["@type"] == [AS + "Follow"] and follow[AS + "object"] == [{"@id": "https://b.example/initiatives/x"}]
    assert _first(follow[AS + "instrument"][0], AS + "name") == "Ann's server"


def test_compact_as2_drops_every_context_and_keeps_the_rest() -> None:
    doc = {"@context": ["https://x.example/ctx"], "type": "Create", "object": [{"@context": {}, "type": "Note"}]}
    assert as_compact_as2(doc) == {"@context": AS2_CONTEXT, "type": "Create", "object": [{"type": "Note"}]}


def test_a_context_that_cannot_be_processed_is_set_aside_too() -> None:
    doc = {"@context": ["https://www.w3.org/ns/activitystreams", {"@vocab": 5}], "type": "Like",
           "id": "https://a.example/likes/1", "actor": "https://a.example/users/ann"}  # fmt: skip
    expansion = expand_leniently(doc, loader=make_document_loader())
    assert isinstance(expansion.set_aside, JsonLdSyntaxError)
    assert expansion.nodes[0]["@type"] == [AS + "Like"]


def test_a_body_that_is_not_even_as2_is_still_refused() -> None:
    doc = {"@context": "https://contexts.example/future.jsonld", "type": "Like", "@id": 5}
    with pytest.raises(JsonLdSyntaxError):
        expand_leniently(doc, loader=make_document_loader())
