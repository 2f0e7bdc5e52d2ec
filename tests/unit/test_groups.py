"""Group actors, pure parts: keys, usernames, the département table, which groups a record
belongs to, which writes are announced; and the setting that turns them on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from node import actors
from node.config import load_config
from node.groups import (
    Group,
    Wanted,
    announces,
    broader_closure,
    candidate_groups,
    group_from_iri,
    group_from_key,
    group_label,
    natural_username,
    read_username,
    theme_slugs,
)
from node.places import DEPARTEMENTS, departement_name, departement_slugs
from node.records import Address, Location, Record

THEMES = "https://w3id.org/oscartes/vocab/themes/"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def record(kind: str = "event", themes: tuple[str, ...] = (), insee: str = "") -> Record:
    location = Location(insee=insee, address=Address(locality="Massy")) if insee else None
    return Record(kind, f"http://n.example/{kind}s/x", "x", "X", NOW, NOW, themes=themes,  # type: ignore[arg-type]
                  location=location)  # fmt: skip


def test_the_101_departements() -> None:
    assert len(DEPARTEMENTS) == 101
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= set(DEPARTEMENTS)
    assert "20" not in DEPARTEMENTS and "975" not in DEPARTEMENTS
    assert departement_name("2a") == "Corse-du-Sud" and departement_name("91") == "Essonne"
    assert len(departement_slugs()) == 101  # no two names make the same slug
    assert departement_slugs()["seine_saint_denis"] == "93"


def test_theme_slugs_are_french_labels_and_collide_with_nothing() -> None:
    slugs = theme_slugs()
    assert slugs["alimentation"] == THEMES + "food"
    assert slugs["circuits_courts"] == THEMES + "short_circuits"
    assert len(slugs) == 30
    assert not set(slugs) & set(departement_slugs())
    assert not set(slugs) & actors.RESERVED


@pytest.mark.parametrize(("group", "key", "username", "label"), [
    (Group(THEMES + "food"), "food", "alimentation", "Alimentation"),
    (Group("", "91"), "91", "essonne", "Essonne"),
    (Group(THEMES + "food", "91"), "food-91", "alimentation_essonne", "Alimentation · Essonne"),
    (Group(THEMES + "third_places", "2B"), "third_places-2b", "tiers_lieux_haute_corse", "Tiers-lieux · Haute-Corse"),
    (Group(THEMES + "repair", "91377"), "repair-91377", "reparation_massy_91", "Réparation · Massy (91)"),
    (Group("", "97411"), "97411", "saint_denis_974", "Saint-Denis (974)"),
])  # fmt: skip
def test_keys_usernames_and_names(group: Group, key: str, username: str, label: str) -> None:
    commune = {"91377": "Massy", "97411": "Saint-Denis"}.get(group.place, "")
    assert group.key == key
    assert group_from_key(key) == group
    assert natural_username(group, commune) == username
    assert group_label(group, commune) == label
    assert group.iri("http://n.example") == f"http://n.example/groups/{key}"


def test_a_commune_without_a_known_name_goes_by_its_code() -> None:
    assert natural_username(Group(THEMES + "food", "91377"), "") == "alimentation_91377"


@pytest.mark.parametrize("key", ["Food", "nope", "food-99", "food-", "-91", "food-91-92", "2A", "20", "food-9137"])
def test_keys_that_name_no_group(key: str) -> None:
    assert group_from_key(key) is None


def test_group_from_iri_only_on_this_node() -> None:
    config = load_config(Path("/tmp"), base_url="http://n.example", env={})
    assert group_from_iri(config, "http://n.example/groups/food-91") == Group(THEMES + "food", "91")
    assert group_from_iri(config, "http://other.example/groups/food-91") is None


def test_every_username_fits_the_column() -> None:
    longest = max(len(natural_username(Group(t, d), "Saint-Rémy-lès-Chevreuse-sur-Yvette"))
                  for t in theme_slugs().values() for d in ("91377", *DEPARTEMENTS))  # fmt: skip
    assert longest + len(actors.GROUP_SUFFIX) + 2 <= 64


def test_reading_usernames() -> None:
    food = THEMES + "food"
    assert read_username("alimentation") == [Wanted(food, "")]
    assert read_username("essonne") == [Wanted("", "91")]
    assert read_username("alimentation_essonne") == [Wanted(food, "91")]
    assert read_username("alimentation_91377") == [Wanted(food, "91377")]
    # A commune by name: the theme reading first, then a commune whose name starts like a theme.
    by_name = [Wanted(food, "91", "massy"), Wanted("", "91", "alimentation_massy")]
    assert read_username("alimentation_massy_91") == by_name
    assert read_username("alimentation_groupe") == [Wanted(food, "")]  # a group that gave way to an initiative
    assert read_username("alimentation_mars") == []
    assert read_username("repair_cafe_massy") == []


def test_a_narrower_theme_belongs_to_the_broader_groups() -> None:
    assert broader_closure(THEMES + "composting") == {THEMES + "composting", THEMES + "waste", THEMES + "reuse"}
    assert broader_closure("https://w3id.org/oscartes/vocab/needs/volunteers") == frozenset()
    keys = {g.key for g in candidate_groups(record(themes=(THEMES + "organic",), insee="91377"))}
    assert keys == {"organic", "food", "91", "91377", "organic-91", "organic-91377", "food-91", "food-91377"}
    assert {g.key for g in candidate_groups(record(insee="97501"))} == {"97501"}  # 975 is no département
    assert candidate_groups(record()) == []


def test_what_is_announced() -> None:
    assert announces(record("event"), "Create") and announces(record("need"), "Update")
    assert announces(record("initiative"), "Create") and not announces(record("initiative"), "Update")
    assert not announces(record("event"), "Delete") and not announces(record("resource"), "Create")
    assert not announces(record("place"), "Create")


def test_the_setting_is_off_unless_turned_on(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).group_actors is False
    assert load_config(tmp_path, env={"OSCARTES_GROUP_ACTORS": "1"}).group_actors is True
    (tmp_path / "node.toml").write_text("group_actors = true\n")
    assert load_config(tmp_path, env={}).group_actors is True
    assert load_config(tmp_path, env={"OSCARTES_GROUP_ACTORS": "0"}).group_actors is False


def test_a_large_starter_pack_is_paged(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from node.routes.groups import STARTER_PAGE, starter_pack_doc, starter_page_doc

    config = load_config(tmp_path, base_url="http://n.example", env={})
    rows = [SimpleNamespace(id=i, iri=f"http://n.example/initiatives/i{i}", slug=f"i{i}", published=NOW)
            for i in range(1, STARTER_PAGE + 1)]  # fmt: skip
    small = starter_pack_doc(config, 2, rows[:2])
    assert small["totalItems"] == 2 and len(small["orderedItems"]) == 2 and "first" not in small
    assert small["orderedItems"][0] == {
        "id": "http://n.example/starter-pack#i1", "type": "FeaturedItem",
        "featuredObject": "http://n.example/initiatives/i1", "featuredObjectType": "Organization",
        "featureAuthorization": "http://n.example/initiatives/i1/stamps/starter-pack",
        "published": "2025-01-01T00:00:00Z",
    }  # fmt: skip
    large = starter_pack_doc(config, STARTER_PAGE + 1, rows)
    assert "orderedItems" not in large and large["first"] == "http://n.example/starter-pack?page=true"
    page = starter_page_doc(config, 0, rows, more=True)
    assert page["partOf"] == large["id"] and len(page["orderedItems"]) == STARTER_PAGE
    assert page["next"] == f"http://n.example/starter-pack?page=true&after={STARTER_PAGE}"
    assert "next" not in starter_page_doc(config, STARTER_PAGE, rows[:1], more=False)
