"""The matching rules, pure: which categories meet, how candidates are ranked, what a feed entry says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from node.matching import Candidate, Match, categories_match, distance_km, feed_items, rank, related_categories
from node.stats import fold, partner_links

NEEDS = "https://w3id.org/oscartes/vocab/needs/"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MASSY = (48.7309, 2.2713)


def offer(iri: str, lat: float | None = None, lon: float | None = None, days: int = 0, **extra: str) -> Candidate:
    fields = {"kind": "offer", "name": iri, "origin": "g", "category": NEEDS + "volunteers", "owner": ""} | extra
    return Candidate(iri=iri, lat=lat, lon=lon, published=T0 + timedelta(days=days),
                     updated=T0 + timedelta(days=days), **fields)  # type: ignore[arg-type]


def test_a_category_meets_itself_its_narrower_and_its_broader_ones_not_its_siblings() -> None:
    assert related_categories(NEEDS + "volunteers") == {NEEDS + "volunteers"}
    skills = related_categories(NEEDS + "skills")
    assert {NEEDS + "skills", NEEDS + "skills_legal", NEEDS + "skills_digital"} <= skills
    assert categories_match(NEEDS + "skills_legal", NEEDS + "skills")
    assert categories_match(NEEDS + "skills", NEEDS + "skills_legal")
    assert not categories_match(NEEDS + "skills_legal", NEEDS + "skills_digital")
    assert not categories_match(NEEDS + "volunteers", NEEDS + "skills")
    assert related_categories("https://elsewhere.example/needs/x") == {"https://elsewhere.example/needs/x"}
    assert related_categories("") == frozenset()


def test_distance_is_equirectangular_in_km() -> None:
    evry = (48.6298, 2.4417)
    assert 15 < distance_km(MASSY, *evry) < 17  # about 16 km by road maps' straight line
    assert distance_km(MASSY, *MASSY) == 0
    paris_lyon = distance_km((48.8566, 2.3522), 45.764, 4.8357)
    assert abs(paris_lyon - 392) < 8  # the great-circle distance is 392 km


def test_rank_nearest_first_then_unlocated_newest_first() -> None:
    far = offer("far", 45.76, 4.83)
    near = offer("near", 48.70, 2.30, days=2)
    old_nowhere = offer("old", days=1)
    new_nowhere = offer("new", days=5)
    ranked = rank(MASSY, [old_nowhere, far, new_nowhere, near])
    assert [m.candidate.iri for m in ranked] == ["near", "far", "new", "old"]
    assert ranked[0].distance_km is not None and ranked[0].distance_km < ranked[1].distance_km  # type: ignore[operator]
    assert ranked[2].distance_km is None
    # without a location of its own, the record sees every candidate by date
    assert [m.candidate.iri for m in rank(None, [near, new_nowhere, far])] == ["new", "near", "far"]
    # equal distance and date: the IRI decides, whatever the input order
    twins = [offer("b", 48.7, 2.3), offer("a", 48.7, 2.3)]
    assert [m.candidate.iri for m in rank(MASSY, twins)] == ["a", "b"]


def test_feed_has_one_entry_per_matching_record_dated_by_the_later_side() -> None:
    need1 = offer("need1", kind="need", name="Besoin un", days=10)
    need2 = offer("need2", kind="need", name="Besoin deux", days=2)
    shared = offer("offer_shared", days=1)
    other = offer("offer_other", days=3)
    items = feed_items([(need1, Match(shared, 1.25)), (need2, Match(shared, 2.0)), (need2, Match(other, None))])
    assert [i.iri for i in items] == ["offer_shared", "offer_other"]  # need1 is newest: its match first
    assert items[0].updated == need1.updated and items[1].updated == other.updated
    assert "« Besoin un »" in items[0].summary and "« Besoin deux »" in items[0].summary
    assert "1,2 km" in items[0].summary or "1,3 km" in items[0].summary


def test_partner_links_are_undirected_and_count_co_organised_events() -> None:
    rows = [
        {"g": "g1", "type": "partnerOf", "s": "a", "o": "b"},
        {"g": "g2", "type": "partnerOf", "s": "b", "o": "a"},
        {"g": "g1", "type": "partnerOf", "s": "a", "o": "a"},
        {"g": "g1", "type": "organizer", "s": "e1", "o": "a"},
        {"g": "g1", "type": "organizer", "s": "e1", "o": "c"},
        {"g": "g1", "type": "organizer", "s": "e2", "o": "c"},
        {"g": "g1", "type": "organizer", "s": "e2", "o": "a"},
        {"g": "g1", "type": "organizer", "s": "e3", "o": "a"},
        {"g": "bad", "type": "partnerOf", "s": "x", "o": "y"},
    ]
    edges = partner_links(rows, excluded=["bad"])
    assert edges == [{"source": "a", "target": "b", "type": "partnerOf", "weight": 2},
                     {"source": "a", "target": "c", "type": "coOrganized", "weight": 2}]  # fmt: skip
    assert partner_links(rows, graphs=["g2"]) == [{"source": "a", "target": "b", "type": "partnerOf", "weight": 1}]


def test_regions_are_summed_from_departements_and_rows_ordered() -> None:
    raw = [({"departement": "91", "kind": "need"}, 2), ({"departement": "75", "kind": "need"}, 3),
           ({"departement": "69", "kind": "need"}, 4), ({"departement": None, "kind": "need"}, 1)]  # fmt: skip
    table = fold(["region", "kind"], raw, {}, 10)
    assert table.columns == ("region", "region_name", "kind", "kind_label", "count")
    assert [(r["region"], r["count"]) for r in table.rows] == [("11", 5), ("84", 4), (None, 1)]
    assert table.rows[0]["region_name"] == "Île-de-France" and table.rows[0]["kind_label"] == "Besoin"
