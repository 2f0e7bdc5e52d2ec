"""The SQL search indexes answer by place, theme, kind, text and date, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from node.storage.db import make_engine
from node.storage.search import SearchQuery, fts5_query, search
from tests import samples
from tests.integration.conftest import RunningNode
from vocab import schemes

THEMES = samples.THEMES


async def _names(node: RunningNode, query: SearchQuery) -> list[str]:
    engine = make_engine(node.config.effective_database_url)
    async with engine.connect() as conn:
        hits = await search(conn, query)
    await engine.dispose()
    return sorted(h.name for h in hits)


async def test_search_combines_filters(node: RunningNode) -> None:
    def place(lat: float, lon: float, insee: str) -> dict[str, object]:
        return {"type": "Place", "latitude": lat, "longitude": lon, "igeo:codeINSEE": insee}

    await node.create("initiatives", samples.initiative(
        "repair_massy", name="Repair Café de Massy", location=place(48.73, 2.27, "91377"),
        summary="Réparation d'objets électriques", **{"pair:hasTopic": [THEMES + "repair"]}))  # fmt: skip
    await node.create("initiatives", samples.initiative(
        "epicerie_evry", name="Épicerie coopérative d'Évry", location=place(48.63, 2.44, "91228"),
        summary="Produits bio et locaux", **{"pair:hasTopic": [THEMES + "organic"]}))  # fmt: skip
    await node.create("initiatives", samples.initiative(
        "ressourcerie_lyon", name="Ressourcerie de Lyon", location=place(45.76, 4.83, "69381"),
        summary="Réemploi et réparation", **{"pair:hasTopic": [THEMES + "second_hand"]}))  # fmt: skip
    await node.create("events", samples.event(owner="initiatives/repair_massy"))

    essonne_bbox = (2.0, 48.3, 2.6, 48.8)
    assert await _names(node, SearchQuery(bbox=essonne_bbox, kinds=["initiative"])) == [
        "Repair Café de Massy", "Épicerie coopérative d'Évry"]  # fmt: skip
    # a theme includes its narrower ones: reuse ⊃ repair, second_hand
    reuse = sorted(schemes.narrower_closure(THEMES + "reuse"))
    assert await _names(node, SearchQuery(themes=reuse, kinds=["initiative"])) == [
        "Repair Café de Massy", "Ressourcerie de Lyon"]  # fmt: skip
    assert await _names(node, SearchQuery(themes=reuse, bbox=essonne_bbox, kinds=["initiative"])) == [
        "Repair Café de Massy"]  # fmt: skip
    # accents and case do not matter; the last word is a prefix
    repair = ["Repair Café de Massy", "Repair Café de décembre", "Ressourcerie de Lyon"]
    assert await _names(node, SearchQuery(text="REPARATION")) == repair, "theme labels are searched too"
    assert await _names(node, SearchQuery(text="epicerie coop")) == ["Épicerie coopérative d'Évry"]
    assert await _names(node, SearchQuery(text="réparation", bbox=essonne_bbox, kinds=["initiative"])) == [
        "Repair Café de Massy"]  # fmt: skip
    assert await _names(node, SearchQuery(departements=["91"], kinds=["initiative"])) == [
        "Repair Café de Massy", "Épicerie coopérative d'Évry"]  # fmt: skip
    assert await _names(node, SearchQuery(insee=["69381"])) == ["Ressourcerie de Lyon"]
    december = SearchQuery(kinds=["event"], starts_after=datetime(2025, 12, 1, tzinfo=UTC),
                           starts_before=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    assert await _names(node, december) == ["Repair Café de décembre"]
    assert await _names(node, SearchQuery(kinds=["event"], starts_after=datetime(2026, 1, 1, tzinfo=UTC))) == []
    # FTS syntax in user text is data, not operators
    assert await _names(node, SearchQuery(text='repair" OR "x')) == []
    async with node.http.delete(f"{node.base}/api/initiatives/repair_massy", headers=node.auth) as r:
        assert r.status == 200
    assert await _names(node, SearchQuery(text="reparation", kinds=["initiative"])) == ["Ressourcerie de Lyon"]


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query("Café  réparé!") == '"cafe" "repare"*'
    assert fts5_query('a" OR NEAR(b') == '"a" "or" "near" "b"*'
    assert fts5_query("¿?") == ""
