"""Needs meet offers across two real nodes: A (127.0.0.2, the database under test) follows B
(127.0.0.3); A's needs find A's and B's offers, nearest first, by the category rule, open only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.matching import distance_km
from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_region import ENV, api, held

ATOM = "{http://www.w3.org/2005/Atom}"
FUTURE, PAST = "2030-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
MASSY, EVRY, PALAISEAU, LYON = (48.7309, 2.2713, "91377"), (48.6298, 2.4417, "91228"), \
    (48.7145, 2.2457, "91477"), (45.7640, 4.8357, "69381")  # fmt: skip


def place(where: tuple[float, float, str]) -> dict[str, Any]:
    return {"type": "Place", "name": "Lieu", "latitude": where[0], "longitude": where[1], "igeo:codeINSEE": where[2]}


async def initiative(node: RunningNode, slug: str, where: tuple[float, float, str], **extra: Any) -> str:
    await node.create("initiatives", samples.initiative(slug, name=slug.replace("_", " ").title(),
                                                         location=place(where), **extra))  # fmt: skip
    return f"{node.base}/initiatives/{slug}"


async def proposal(node: RunningNode, collection: str, slug: str, owner: str, category: str,
                   where: tuple[float, float, str] | None = None, end: str = FUTURE, **extra: Any) -> str:  # fmt: skip
    doc = samples.proposal(collection, slug, owner=f"initiatives/{owner}", category=category, endTime=end,
                           name=slug.replace("_", " "), **extra)  # fmt: skip
    if where is not None:
        doc["location"] = place(where)
    await node.create(collection, doc)
    return f"{node.base}/{collection}/{slug}"


async def start_pair(tmp_path: Path, database_url: str) -> tuple[RunningNode, RunningNode]:
    try:
        a = await start_node(tmp_path / "a", database_url, host="127.0.0.2", **ENV)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    try:
        b = await start_node(tmp_path / "b", "", host="127.0.0.3", **ENV)
    except BaseException:
        await stop_node(a)
        raise
    return a, b


async def follow(a: RunningNode, b: RunningNode, count: int) -> None:
    await api(a, "POST", "/api/follows", {"target": b.base})

    async def copied() -> bool:
        return len(await held(a, b)) >= count

    await eventually(copied, 30, what=f"A copies B's {count} records")


@pytest.fixture
async def pair(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    a, b = await start_pair(tmp_path, database_url)
    yield a, b
    await stop_node(a)
    await stop_node(b)


async def get(node: RunningNode, path: str, status: int = 200, **headers: str) -> Any:
    async with node.http.get(f"{node.base}{path}", headers=headers) as response:
        text = await response.text()
        assert response.status == status, (path, response.status, text)
        if response.content_type.endswith("json"):
            return await response.json(content_type=None)
        return text


def ids(body: dict[str, Any], key: str = "items") -> list[str]:
    return [item["id"] for item in body[key]]


async def test_needs_meet_offers_across_origins(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    # B: an atelier in Palaiseau, 2.6 km from Massy, with offers near, far, nowhere; and a need.
    atelier_b = await initiative(b, "atelier_b", PALAISEAU)
    b_near = await proposal(b, "offers", "benevoles_b", "atelier_b", "volunteers", PALAISEAU)
    b_far = await proposal(b, "offers", "benevoles_lyon_b", "atelier_b", "volunteers", LYON)
    b_nowhere = await proposal(b, "offers", "sans_lieu_b", "atelier_b", "volunteers")
    b_legal = await proposal(b, "offers", "juriste_b", "atelier_b", "skills_legal", PALAISEAU)
    b_need = await proposal(b, "needs", "besoin_b", "atelier_b", "volunteers", PALAISEAU)
    await follow(a, b, 6)
    # A: an épicerie in Massy with needs (and an offer of its own), an association in Évry.
    epicerie = await initiative(a, "epicerie_a", MASSY)
    asso = await initiative(a, "asso_evry", EVRY)
    need = await proposal(a, "needs", "benevoles_a", "epicerie_a", "volunteers", MASSY)
    skills_need = await proposal(a, "needs", "competences_a", "epicerie_a", "skills", MASSY)
    legal_need = await proposal(a, "needs", "juriste_a", "epicerie_a", "skills_legal", MASSY)
    own = await proposal(a, "offers", "benevoles_maison", "epicerie_a", "volunteers", MASSY)
    evry = await proposal(a, "offers", "aide_evry", "asso_evry", "volunteers", EVRY)
    expired = await proposal(a, "offers", "aide_expiree", "asso_evry", "volunteers", EVRY, end=PAST)
    finance = await proposal(a, "offers", "compta_evry", "asso_evry", "skills_financial", EVRY)

    # Nearest first across both origins; no location last; own and expired offers left out.
    body = await get(a, f"/api/matches?for={need}")
    assert body["for"] == need and body["kind"] == "need" and body["open"] is True
    assert ids(body) == [b_near, evry, b_far, b_nowhere]
    assert own not in ids(body) and expired not in ids(body)
    by_id = {item["id"]: item for item in body["items"]}
    assert by_id[b_near]["origin"] == b.config.graph_iri and by_id[evry]["origin"] == a.config.graph_iri
    assert by_id[b_near]["owner"] == atelier_b and by_id[evry]["owner"] == asso
    assert by_id[b_near]["type"] == "Note" and by_id[b_near]["kind"] == "offer"
    assert by_id[b_near]["category"] == samples.NEEDS + "volunteers"
    assert by_id[b_near]["distance_km"] == pytest.approx(distance_km(MASSY[:2], *PALAISEAU[:2]), abs=0.01)
    assert by_id[b_near]["distance_km"] < by_id[evry]["distance_km"] < by_id[b_far]["distance_km"]
    assert "distance_km" not in by_id[b_nowhere]
    assert ids(body, "initiatives") == [atelier_b, asso], "the initiatives that offer it, nearest first"
    assert set(body["initiatives"][0]["via"]) == {b_near, b_far, b_nowhere}
    assert epicerie not in ids(body, "initiatives")
    # The same through the record's own path.
    assert await get(a, "/needs/benevoles_a/matches") == body
    assert ids(await get(a, "/needs/benevoles_a/matches?limit=1")) == [b_near]

    # The category rule: a broader need meets narrower offers; siblings do not meet.
    assert set(ids(await get(a, f"/api/matches?for={skills_need}"))) == {b_legal, finance}
    assert ids(await get(a, f"/api/matches?for={legal_need}")) == [b_legal]

    # The reverse, for a followed node's offer: A's needs (B's own need is the same initiative's).
    reverse = await get(a, f"/api/matches?for={b_near}")
    assert ids(reverse) == [need] and b_need not in ids(reverse)
    assert ids(reverse, "initiatives") == [epicerie]
    spots = {b_need: PALAISEAU, need: MASSY}
    nearest = sorted(spots, key=lambda iri: distance_km(EVRY[:2], *spots[iri][:2]))
    assert ids(await get(a, "/offers/aide_evry/matches")) == nearest

    # The need's page lists them; the initiative's page links to its feed.
    page = await get(a, "/needs/benevoles_a", Accept="text/html")
    section = page.split('id="correspondances"', 1)[1]
    assert section.index(b_near) < section.index(evry) < section.index(b_far)
    assert own not in section and "2,6 km" in section and b.base.split("//")[1] in section
    home = await get(a, "/initiatives/epicerie_a", Accept="text/html")
    assert f'<link rel="alternate" type="application/atom+xml" title="Correspondances (Atom)" ' \
           f'href="{epicerie}/matches.atom">' in home  # fmt: skip
    assert f'<a href="{epicerie}/matches.atom"' in home

    # The Atom feed of the épicerie's matches.
    async with a.http.get(f"{epicerie}/matches.atom") as response:
        assert response.status == 200 and response.content_type == "application/atom+xml"
        feed = ET.fromstring(await response.read())
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id") == f"{epicerie}/matches.atom"
    assert "Epicerie A" in (feed.findtext(f"{ATOM}title") or "")
    entries = feed.findall(f"{ATOM}entry")
    entry_ids = [e.findtext(f"{ATOM}id") for e in entries]
    # its needs' offers, and B's need that its own offer answers: one entry per matching record
    assert set(entry_ids) == {b_near, evry, b_far, b_nowhere, b_legal, finance, b_need}
    assert len(entry_ids) == len(set(entry_ids))
    updated = [e.findtext(f"{ATOM}updated") or "" for e in entries]
    assert updated == sorted(updated, reverse=True), "newest first"
    assert feed.findtext(f"{ATOM}updated") == updated[0]
    for entry in entries:
        assert entry.findtext(f"{ATOM}title") and entry.find(f"{ATOM}link").get("href") == entry.findtext(f"{ATOM}id")  # type: ignore[union-attr]
    legal_entry = entries[entry_ids.index(b_legal)]
    assert "« competences a »" in (legal_entry.findtext(f"{ATOM}summary") or "")
    assert "« juriste a »" in (legal_entry.findtext(f"{ATOM}summary") or "")

    # Errors: unknown, not a need or offer, missing parameter, bad limit, unknown parameter.
    await get(a, f"/api/matches?for={a.base}/needs/inconnu", 404)
    await get(a, f"/api/matches?for={epicerie}", 400)
    await get(a, "/api/matches", 400)
    await get(a, f"/api/matches?for={need}&limit=0", 400)
    await get(a, f"/api/matches?for={need}&near=1", 400)
    await get(a, "/needs/inconnu/matches", 404)
    await get(a, "/initiatives/inconnue/matches.atom", 404)

    # Deleting B's offer at B removes the match at A; deleting A's need answers 410.
    async with b.http.delete(f"{b.base}/api/offers/benevoles_b", headers=b.auth) as r:
        assert r.status == 200

    async def dropped() -> bool:
        return b_near not in ids(await get(a, f"/api/matches?for={need}"))

    await eventually(dropped, 30, what="B's deletion removes the match at A")
    assert ids(await get(a, f"/api/matches?for={need}")) == [evry, b_far, b_nowhere]
    async with a.http.delete(f"{a.base}/api/needs/benevoles_a", headers=a.auth) as r:
        assert r.status == 200
    problem = await get(a, f"/api/matches?for={need}", 410)
    assert problem["status"] == 410 and need in problem["detail"]
    assert need not in ids(await get(a, f"/api/matches?for={evry}"))


async def test_an_expired_need_still_lists_its_matches_and_says_so(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    await initiative(b, "atelier_b", PALAISEAU)
    b_offer = await proposal(b, "offers", "benevoles_b", "atelier_b", "volunteers", PALAISEAU)
    await follow(a, b, 2)
    await initiative(a, "epicerie_a", MASSY)
    old = await proposal(a, "needs", "ancien_besoin", "epicerie_a", "volunteers", MASSY, end=PAST)
    body = await get(a, f"/api/matches?for={old}")
    assert body["open"] is False and ids(body) == [b_offer]
    page = await get(a, "/needs/ancien_besoin", Accept="text/html")
    assert "expiré" in page
    # The expired need is not an answer to B's offer, and not in the épicerie's feed.
    assert ids(await get(a, f"/api/matches?for={b_offer}")) == []
    async with a.http.get(f"{a.base}/initiatives/epicerie_a/matches.atom") as response:
        feed = ET.fromstring(await response.read())
    assert feed.findall(f"{ATOM}entry") == [] and feed.findtext(f"{ATOM}updated")
