"""Thematic and local follow targets: `Group` actors that boost the directory's records.

A group is a theme (a concept of the themes scheme, with every narrower one), a place (a
département or a commune, by INSEE code), or both. Its actor is made the first time someone
asks for it (WebFinger, or a GET of its IRI) if at least one live record of the whole
federated directory matches; when a matching record is created or changed, each group with
followers `Announce`s it to them. Opt-in: `OSCARTES_GROUP_ACTORS=1` (docs/groups.md).

The group's IRI is made of codes, `{base}/groups/{key}` (`food`, `91`, `food-91`,
`food-91377`), so it stays put and a record finds its groups with one indexed query; its
username is made for people (`alimentation_essonne`, `alimentation_massy_91`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.delivery import inboxes
from federation.webfinger import parse_handle
from node import actors, federate
from node.config import Config
from node.convert.common import fmt_datetime, slugify
from node.places import DEPARTEMENTS, departement_name, departement_slugs
from node.records import Record
from node.storage import tables
from node.storage.codec import record_from_json
from node.storage.repo import departement_of
from vocab import AS2_CONTEXT, SECURITY_CONTEXT, schemes

#: Records that make a group exist (and that its page and `featured` show).
SHOWN_KINDS = ("initiative", "event", "need", "offer")
#: Kinds announced on Create and Update; initiatives only on Create (Mastodon shows the others).
ANNOUNCED_KINDS = ("event", "need", "offer")
FEATURED_SIZE = 20
COMMUNE_SLUG_MAX = 24  # theme (26 at most) + commune + département + "_groupe_n" stay within 64
INSEE = re.compile(r"[0-9][0-9AB][0-9]{3}")
_INSEE_NAME = re.compile(r"[0-9][0-9ab][0-9]{3}")
_COMMUNE_NAME = re.compile(r"([a-z0-9_]+)_([0-9]{2,3}|2a|2b)")
_SUFFIX = re.compile(re.escape(actors.GROUP_SUFFIX) + r"(?:_[0-9]+)?$")

#: FEP-7aa9 (featured collections, "starter packs"): the node actor's `featuredCollections`.
FEP_7AA9 = "https://w3id.org/fep/7aa9#"
FEATURED_COLLECTIONS_TERM = {"featuredCollections": {"@id": f"{FEP_7AA9}featuredCollections", "@type": "@id"}}


@dataclass(frozen=True)
class Group:
    """`theme`: a theme concept IRI or ""; `place`: a département code ("91", "2A"), a commune
    INSEE code ("91377") or ""."""

    theme: str = ""
    place: str = ""

    @property
    def commune(self) -> bool:
        return len(self.place) == 5

    @property
    def key(self) -> str:
        notation = schemes.concepts()[self.theme].notation if self.theme else ""
        return "-".join(part for part in (notation, self.place.lower()) if part)

    def iri(self, base: str) -> str:
        return f"{base}/groups/{self.key}"


# -- themes and places, pure --------------------------------------------------------------


@cache
def theme_slugs() -> Mapping[str, str]:
    """Slug of the French label -> theme IRI: `alimentation`, `circuits_courts`, `tiers_lieux`."""
    themes = (c for c in schemes.concepts().values() if c.scheme == "themes")
    return MappingProxyType({slugify(c.label("fr"), 64): c.iri for c in themes})


def theme_slug(iri: str) -> str:
    return slugify(schemes.concepts()[iri].label("fr"), 64)


def broader_closure(iri: str) -> frozenset[str]:
    """A theme and every theme above it: a record about "repair" matches the "reuse" group."""
    index = schemes.concepts()
    if iri not in index or index[iri].scheme != "themes":
        return frozenset()
    seen, pending = {iri}, [iri]
    while pending:
        for parent in index[pending.pop()].broader:
            if parent not in seen and parent in index:
                seen.add(parent)
                pending.append(parent)
    return frozenset(seen)


def group_from_key(key: str) -> Group | None:
    """The group an IRI's last segment names, or None."""
    notation, sep, place = key.partition("-")
    if not sep:
        notation, place = ("", key) if key[:1].isdigit() else (key, "")
    theme = ""
    if notation:
        concept = schemes.concept("themes", notation)
        if concept is None:
            return None
        theme = concept.iri
    place = place.upper()
    if place and not (place in DEPARTEMENTS or INSEE.fullmatch(place)):
        return None
    group = Group(theme, place)
    return group if group.key == key else None  # one key per group


def group_from_iri(config: Config, iri: str) -> Group | None:
    prefix = f"{config.base_url}/groups/"
    return group_from_key(iri.removeprefix(prefix)) if iri.startswith(prefix) else None


def place_slug(group: Group, commune_name: str = "") -> str:
    """`essonne`; `massy_91` for a commune (its INSEE code when its name is unknown)."""
    if not group.place:
        return ""
    if not group.commune:
        return slugify(departement_name(group.place) or group.place, 64)
    name = slugify(commune_name, COMMUNE_SLUG_MAX) if commune_name.strip() else ""
    return f"{name}_{departement_of(group.place).lower()}" if name and name != "x" else group.place.lower()


def natural_username(group: Group, commune_name: str = "") -> str:
    """`alimentation`, `essonne`, `alimentation_essonne`, `alimentation_massy_91`."""
    parts = [theme_slug(group.theme)] if group.theme else []
    return "_".join([*parts, place_slug(group, commune_name)] if group.place else parts)


@dataclass(frozen=True)
class Wanted:
    """What a username asks for. A commune asked by name has `place` = its département code and
    `commune_slug` set; its INSEE code is found among the records."""

    theme: str
    place: str
    commune_slug: str = ""


def read_username(username: str) -> list[Wanted]:
    """Every reading of a username, most likely first; `[]` when it names no group."""
    names = [username] + ([stripped] if (stripped := _SUFFIX.sub("", username)) != username else [])
    found: list[Wanted] = []
    for name in names:
        splits = [("", name)] + [(iri, name[len(slug):].removeprefix("_")) for slug, iri in theme_slugs().items()
                                 if name == slug or name.startswith(slug + "_")]  # fmt: skip
        for theme, rest in sorted(splits, key=lambda s: (s[0] == "", len(s[1]))):  # longest theme first
            found += [Wanted(theme, *place) for place in _read_place(rest) if theme or place[0]]
    return list(dict.fromkeys(found))


def _read_place(rest: str) -> list[tuple[str, str]]:
    if not rest:
        return [("", "")]
    if rest in departement_slugs():
        return [(departement_slugs()[rest], "")]
    if _INSEE_NAME.fullmatch(rest):
        return [(rest.upper(), "")]
    named = _COMMUNE_NAME.fullmatch(rest)
    return [(named.group(2).upper(), named.group(1))] if named else []


def candidate_groups(record: Record) -> list[Group]:
    """Every group a record belongs to: its themes and those above, × none, its département, its commune."""
    themes = sorted({t for theme in record.themes for t in broader_closure(theme)})
    insee = record.location.insee.upper() if record.location and record.location.insee else ""
    places = [insee] if insee else []
    if insee and departement_of(insee) in DEPARTEMENTS:
        places.insert(0, departement_of(insee))
    return ([Group(t, "") for t in themes] + [Group("", p) for p in places]
            + [Group(t, p) for t in themes for p in places])  # fmt: skip


def announces(record: Record, kind: str) -> bool:
    return kind in ("Create", "Update") and (
        record.kind in ANNOUNCED_KINDS or (record.kind == "initiative" and kind == "Create")
    )


# -- what the records say ----------------------------------------------------------------


def matching(group: Group, columns: Sequence[Any] = (tables.records.c.id,),
             kinds: Sequence[str] = SHOWN_KINDS) -> Select[Any]:  # fmt: skip
    """Live records of the whole directory (every origin) in the group."""
    records = tables.records
    query = select(*columns).where(records.c.deleted_at.is_(None), records.c.kind.in_(kinds))
    if group.theme:
        themed = select(tables.record_themes.c.record_id).where(
            tables.record_themes.c.theme.in_(sorted(schemes.narrower_closure(group.theme))))  # fmt: skip
        query = query.where(records.c.id.in_(themed))
    if group.place:
        query = query.where((records.c.insee if group.commune else records.c.departement) == group.place)
    return query


async def has_records(conn: AsyncConnection, group: Group) -> bool:
    return (await conn.execute(matching(group).limit(1))).first() is not None


async def newest(conn: AsyncConnection, group: Group, kinds: Sequence[str] = SHOWN_KINDS,
                 limit: int = FEATURED_SIZE) -> list[tuple[str, str, str]]:  # fmt: skip
    """(iri, kind, name) of the group's newest records: its `featured` collection and its page."""
    records = tables.records
    query = matching(group, (records.c.iri, records.c.kind, records.c.name), kinds)
    rows = await conn.execute(query.order_by(records.c.published.desc(), records.c.id.desc()).limit(limit))
    return [(r.iri, r.kind, r.name) for r in rows]


def _locality(data: str) -> str:
    location = record_from_json(data).location
    return location.address.locality if location and location.address else ""


async def commune_name(conn: AsyncConnection, insee: str) -> str:
    """The commune's name as its oldest live record writes it ("" if that one has none)."""
    records = tables.records
    query = select(records.c.data).where(records.c.insee == insee, records.c.deleted_at.is_(None),
                                         records.c.kind.in_(SHOWN_KINDS))  # fmt: skip
    row = (await conn.execute(query.order_by(records.c.id).limit(1))).first()
    return _locality(row.data) if row else ""


async def _commune_by_slug(conn: AsyncConnection, departement: str, slug: str) -> str:
    """The INSEE code of the département's commune whose name makes `slug`, or ""."""
    records = tables.records
    oldest = (select(func.min(records.c.id)).where(records.c.departement == departement,
                                                   records.c.deleted_at.is_(None), records.c.kind.in_(SHOWN_KINDS),
                                                   records.c.insee.is_not(None))
              .group_by(records.c.insee))  # fmt: skip
    rows = await conn.execute(select(records.c.insee, records.c.data).where(records.c.id.in_(oldest)))
    return next((r.insee for r in rows if slugify(_locality(r.data), COMMUNE_SLUG_MAX) == slug), "")


async def _resolve(conn: AsyncConnection, wanted: Wanted) -> Group | None:
    place = await _commune_by_slug(conn, wanted.place, wanted.commune_slug) if wanted.commune_slug else wanted.place
    if wanted.commune_slug and not place:
        return None
    if not place and not wanted.theme:
        return None
    if place and not (place in DEPARTEMENTS or INSEE.fullmatch(place)):
        return None
    group = Group(wanted.theme, place)
    return group if await has_records(conn, group) else None


# -- the actors ------------------------------------------------------------------------


async def actor_for(engine: AsyncEngine, config: Config, group: Group) -> actors.LocalActor | None:
    """The group's actor, made now if some live record matches it; None otherwise."""
    iri = group.iri(config.base_url)
    async with engine.connect() as conn:
        found = await actors.get(conn, iri)
        if found is not None or not await has_records(conn, group):
            return found
    keys = await asyncio.to_thread(actors.new_keypair, config)
    try:
        async with engine.begin() as conn:
            name = await commune_name(conn, group.place) if group.commune else ""
            username = await actors.free_group_username(conn, natural_username(group, name))
            return await actors.ensure(conn, config, iri, username, "group", keys)
    except IntegrityError:  # made meanwhile by a concurrent request
        async with engine.connect() as conn:
            return await actors.get(conn, iri)


async def actor_by_username(engine: AsyncEngine, config: Config, username: str) -> actors.LocalActor | None:
    if not config.group_actors:
        return None
    async with engine.connect() as conn:
        found = await actors.by_username(conn, username)
        if found is not None:
            return found if found.kind == "group" else None
        group = await _first_resolved(conn, read_username(username))
    return await actor_for(engine, config, group) if group else None


async def _first_resolved(conn: AsyncConnection, readings: list[Wanted]) -> Group | None:
    for wanted in readings:
        group = await _resolve(conn, wanted)
        if group is not None:
            return group
    return None


async def webfinger_actor(engine: AsyncEngine, config: Config, resource: str,
                          found: actors.LocalActor | None) -> actors.LocalActor | None:  # fmt: skip
    """What WebFinger answers for `resource` once the existing actors were asked (`found`):
    initiatives and the node first; groups only when the host turned them on."""
    if found is not None:
        return found if found.kind != "group" or config.group_actors else None
    if not config.group_actors:
        return None
    if resource.startswith(("http://", "https://")):
        group = group_from_iri(config, resource)
        return await actor_for(engine, config, group) if group else None
    user, _ = parse_handle(resource)
    return await actor_by_username(engine, config, user)


# -- announcing --------------------------------------------------------------------------


async def announce_to_groups(conn: AsyncConnection, config: Config, record: Record, kind: str, now: datetime) -> int:
    """In the caller's transaction, after a record (local or remote) was created or updated: each
    existing group it belongs to that has followers announces it to them once. Returns the
    number of delivery rows written."""
    if not config.group_actors or not announces(record, kind):
        return 0
    iris = [g.iri(config.base_url) for g in candidate_groups(record)]
    if not iris:
        return 0
    rows = tables.actors
    found = await conn.execute(select(rows.c.iri).where(rows.c.iri.in_(iris), rows.c.kind == "group"))
    written = 0
    for group_iri in sorted(r.iri for r in found):
        recipients = await federate.follower_recipients(conn, group_iri)
        if not recipients or await _announced(conn, group_iri, record.iri):
            continue
        activity_id, _ = await federate.record_activity(conn, config, group_iri, "Announce", record.iri, now,
                                                        public=True)  # fmt: skip
        written += await federate.enqueue_deliveries(conn, activity_id, inboxes(recipients), now)
    return written


async def _announced(conn: AsyncConnection, actor: str, obj: str) -> bool:
    """An update re-announces nothing: followers already have the record."""
    done = tables.activities
    query = select(done.c.id).where(done.c.actor == actor, done.c.type == "Announce", done.c.object == obj)
    return (await conn.execute(query.limit(1))).first() is not None


# -- documents ---------------------------------------------------------------------------


def place_label(group: Group, commune: str = "") -> str:
    if group.commune:
        return f"{commune} ({departement_of(group.place)})" if commune else f"commune {group.place}"
    return departement_name(group.place) or group.place


def group_label(group: Group, commune: str = "") -> str:
    """"Alimentation · Essonne", "Alimentation", "Massy (91)"."""
    parts = [schemes.concepts()[group.theme].label("fr")] if group.theme else []
    return " · ".join([*parts, place_label(group, commune)] if group.place else parts)


def group_summary(group: Group, node_name: str, commune: str = "") -> str:
    """What the group boosts, in plain text."""
    what = "Partage les nouvelles initiatives, les événements, besoins et offres"
    if group.theme:
        concept = schemes.concepts()[group.theme]
        below = sorted(schemes.concepts()[n].label("fr") for n in schemes.narrower_closure(group.theme) - {group.theme})
        what += f" du thème « {concept.label('fr')} »" + (f" (avec {', '.join(below)})" if below else "")
    if group.place:
        where = place_label(group, commune)
        what += f", à {where}" if group.commune else f", dans le département {where} ({group.place})"
    return (f"{what}, publiés sur tous les nœuds de l'annuaire que connaît {node_name}. "
            "Compte automatique : il ne publie rien d'autre.")  # fmt: skip


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def group_actor_doc(config: Config, actor: actors.LocalActor, group: Group, commune: str = "") -> dict[str, Any]:
    iri = actor.iri
    doc: dict[str, Any] = {
        "@context": [AS2_CONTEXT, SECURITY_CONTEXT, config.context_url], "id": iri, "type": "Group",
        "preferredUsername": actor.username, "name": group_label(group, commune),
        "summary": f"<p>{_escape(group_summary(group, config.node_name, commune))}</p>", "url": iri,
        "inbox": f"{iri}/inbox", "outbox": f"{iri}/outbox", "followers": f"{iri}/followers",
        "following": f"{iri}/following", "featured": f"{iri}/featured",
        "endpoints": {"sharedInbox": f"{config.base_url}/inbox"},
        "publicKey": {"id": actor.key_id, "owner": iri, "publicKeyPem": actor.public_pem},
        "manuallyApprovesFollowers": False, "discoverable": True, "indexable": True,
    }  # fmt: skip
    if actor.created_at is not None:
        doc["published"] = fmt_datetime(actor.created_at)
    return doc


def record_hook(config: Config) -> Callable[[AsyncConnection, Record, str, datetime], Awaitable[int]]:
    """What the inbox worker calls for live news of another node's record."""

    async def hook(conn: AsyncConnection, record: Record, kind: str, now: datetime) -> int:
        return await announce_to_groups(conn, config, record, kind, now)

    return hook
