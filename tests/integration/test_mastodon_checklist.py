"""INTEROP.md's Mastodon checklist, item by item, for what can be checked without Mastodon."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation import signatures as sig
from tests import samples
from tests.fakeap import FakeFediverse
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node

AS2_CONTEXT = "https://www.w3.org/ns/activitystreams"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    await running.create("initiatives", samples.initiative(icon={"type": "Image", "url": "https://example.org/l.png"}))
    yield running
    await stop_node(running)


async def get_json(node: RunningNode, url: str, accept: str = AS2, **headers: str) -> tuple[Any, Any]:
    async with node.http.get(url, headers={"Accept": accept, **headers}, allow_redirects=False) as r:
        return r, json.loads(await r.read()) if r.status == 200 else None


async def test_webfinger_loop_closes(node: RunningNode) -> None:
    host = node.config.host
    response, jrd = await get_json(node, f"{node.base}/.well-known/webfinger?resource=acct:repair_cafe_massy@{host}")
    assert response.status == 200 and response.headers["Content-Type"].startswith("application/jrd+json")
    assert jrd["subject"] == f"acct:repair_cafe_massy@{host}"
    self_link = next(link for link in jrd["links"] if link["rel"] == "self")
    assert self_link["type"] == "application/activity+json"
    rels = {link["rel"] for link in jrd["links"]}
    assert {"http://webfinger.net/rel/profile-page", "http://ostatus.org/schema/1.0/subscribe"} <= rels
    _, actor = await get_json(node, self_link["href"])
    assert actor["id"] == self_link["href"]
    handle = f"acct:{actor['preferredUsername']}@{host}"
    _, again = await get_json(node, f"{node.base}/.well-known/webfinger?resource={handle}")
    assert next(link for link in again["links"] if link["rel"] == "self")["href"] == actor["id"]
    response, _ = await get_json(node, f"{node.base}/.well-known/webfinger?resource=acct:nobody@{host}")
    assert response.status == 404


async def test_actor_document(node: RunningNode) -> None:
    iri = f"{node.base}/initiatives/repair_cafe_massy"
    for accept in (AS2, 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'):
        response, actor = await get_json(node, iri, accept)
        assert response.status == 200 and actor["id"] == iri  # no redirect, same URL
        assert int(response.headers["Content-Length"]) < 1_000_000
    assert response.headers["Content-Type"].startswith("application/ld+json")
    assert actor["@context"][:2] == [AS2_CONTEXT, "https://w3id.org/security/v1"]
    assert actor["type"] == "Organization", "one type, a string (strict clients compare it as one)"
    assert actor["preferredUsername"] == "repair_cafe_massy"
    for key in ("inbox", "outbox", "followers", "following", "featured", "url", "published", "icon"):
        assert actor[key], key
    assert actor["endpoints"]["sharedInbox"] == f"{node.base}/inbox"
    assert actor["publicKey"]["id"] == f"{iri}#main-key" and actor["publicKey"]["owner"] == iri
    sig.load_public(actor["publicKey"]["publicKeyPem"])
    assert actor["discoverable"] is True and actor["indexable"] is True
    assert actor["manuallyApprovesFollowers"] is False
    assert isinstance(actor["attachment"], list) and all(f["type"] == "PropertyValue" for f in actor["attachment"])
    assert {f["name"] for f in actor["attachment"]} >= {"Adresse", "Site web", "Forme juridique"}
    assert actor["attributionDomains"] == [node.config.host]
    assert "BEGIN PRIVATE KEY" not in json.dumps(actor)
    response, _ = await get_json(node, iri, "application/json")
    assert response.status == 200, "plain JSON is served too (Mastodon itself only asks for AS2)"


async def test_signed_get_is_accepted(node: RunningNode) -> None:
    fake = await FakeFediverse("127.0.0.4").start()
    try:
        mastodon = fake.actor("instance")
        iri = f"{node.base}/initiatives/repair_cafe_massy"
        headers = sig.sign_request("GET", iri, {"Accept": AS2}, None, mastodon.key_id, mastodon.key)
        async with node.http.get(iri, headers=headers) as r:
            assert r.status == 200
    finally:
        await fake.stop()


async def test_event_and_proposal_rendering(node: RunningNode) -> None:
    event = await node.create("events", samples.event())
    assert event["summary"] == ("sam. 13 déc. 2025, 14h–18h · Maison des associations + en ligne")
    assert event["startTime"] == "2025-12-13T14:00:00+01:00" and event["timezone"] == "Europe/Paris"
    need = await node.create("needs", samples.proposal())
    assert need["type"] == ["Note", "Proposal"] and "summary" not in need, "never a content warning"
    assert need["content"].startswith("<p>Bénévoles réparateurs</p><p>Nous cherchons")
    assert 'class="mention hashtag" rel="tag"' in need["content"]
    assert need["tag"] == [{"id": f"{node.base}/tags/repair", "type": "Hashtag", "href": f"{node.base}/tags/repair",
                            "name": "#repair"}]  # fmt: skip
    for doc in (event, need):
        assert doc["attributedTo"].startswith(node.base), "object host = attributedTo host"
        assert doc["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    async with node.http.get(f"{node.base}/tags/repair", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"].endswith("/vocab/themes/repair")
    _, featured = await get_json(node, f"{node.base}/initiatives/repair_cafe_massy/featured")
    assert featured["orderedItems"] == [need["id"], event["id"]] and all(isinstance(i, str) for i in featured[
        "orderedItems"])  # fmt: skip


async def test_html_page_names_its_creator(node: RunningNode) -> None:
    await node.create("events", samples.event())
    async with node.http.get(f"{node.base}/events/repair_cafe_decembre", headers={"Accept": "text/html"}) as r:
        page = await r.text()
    assert f'<meta name="fediverse:creator" content="@repair_cafe_massy@{node.config.host}">' in page
    assert '<meta property="og:title"' in page


async def test_nodeinfo_and_host_meta(node: RunningNode) -> None:
    _, links = await get_json(node, f"{node.base}/.well-known/nodeinfo", "application/json")
    rels = {link["rel"]: link["href"] for link in links["links"]}
    assert rels["https://www.w3.org/ns/activitystreams#Application"] == f"{node.base}/actor"
    for version in ("2.0", "2.1"):
        _, info = await get_json(node, rels[f"http://nodeinfo.diaspora.software/ns/schema/{version}"],
                                 "application/json")  # fmt: skip
        assert info["software"]["name"] == "oscartes" and info["protocols"] == ["activitypub"]
        assert info["usage"]["users"]["total"] == 1
    _, app_actor = await get_json(node, f"{node.base}/actor")
    assert app_actor["type"] == "Application" and app_actor["publicKey"]["id"] == f"{node.base}/actor#main-key"
    async with node.http.get(f"{node.base}/.well-known/host-meta") as r:
        assert "/.well-known/webfinger?resource={uri}" in await r.text()


async def test_authorized_fetch_mode(tmp_path: Path) -> None:
    node = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1",
                            OSCARTES_AUTHORIZED_FETCH="1")  # fmt: skip
    fake = await FakeFediverse("127.0.0.4").start()
    try:
        await node.create("initiatives", samples.initiative())
        iri = f"{node.base}/initiatives/repair_cafe_massy"
        async with node.http.get(iri, headers={"Accept": AS2}) as r:
            assert r.status == 401
        async with node.http.get(iri, headers={"Accept": "text/html"}) as r:
            assert r.status == 200, "people's pages stay open"
        async with node.http.get(f"{node.base}/actor", headers={"Accept": AS2}) as r:
            assert r.status == 200, "the node actor stays open: servers fetch it to check our signatures"
        mastodon = fake.actor("instance")
        headers = sig.sign_request("GET", iri, {"Accept": AS2}, None, mastodon.key_id, mastodon.key)
        async with node.http.get(iri, headers=headers) as r:
            assert r.status == 200
    finally:
        await fake.stop()
        await stop_node(node)


async def test_follower_lists_can_be_hidden(tmp_path: Path) -> None:
    node = await start_node(tmp_path / "n", "", OSCARTES_HIDE_FOLLOWER_LISTS="1")
    try:
        await node.create("initiatives", samples.initiative())
        _, followers = await get_json(node, f"{node.base}/initiatives/repair_cafe_massy/followers")
        assert followers["totalItems"] == 0 and "orderedItems" not in followers
    finally:
        await stop_node(node)
