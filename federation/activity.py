"""Activities as the protocol sees them: an envelope read from compact JSON at the inbox door,
and the checks every activity passes before anything acts on it. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation.errors import MalformedActivity, Refused

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = frozenset({PUBLIC, "as:Public", "Public"})
#: Activities whose object the actor must own (same host), per Mastodon's and Fedify's rules.
OWNED_OBJECT_TYPES = frozenset({"Create", "Update", "Delete"})


@dataclass(frozen=True)
class Envelope:
    """What the inbox needs before storing: who says what about which object."""

    id: str
    type: str
    actor: str
    object_id: str
    object: Mapping[str, Any] | None


def host(iri: str) -> str:
    return urlsplit(iri).netloc.lower()


def ref(value: Any) -> str:
    """An IRI given as a string or as an object with an id; "" when absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        ident = value.get("id", value.get("@id", ""))
        return ident if isinstance(ident, str) else ""
    if isinstance(value, list) and value:
        return ref(value[0])
    return ""


def first_type(value: Any) -> str:
    types = value if isinstance(value, list) else [value]
    names = [t for t in types if isinstance(t, str)]
    return names[0].rsplit("#", 1)[-1] if names else ""


def envelope(doc: Any) -> Envelope:
    """Read the envelope of a compact AS2 activity; refuse what cannot be an activity."""
    if not isinstance(doc, Mapping):
        raise MalformedActivity("an activity is a JSON object")
    kind = first_type(doc.get("type", doc.get("@type")))
    if not kind:
        raise MalformedActivity("the activity has no type")
    actor = ref(doc.get("actor"))
    if not actor or urlsplit(actor).scheme not in ("http", "https"):
        raise MalformedActivity("the activity has no actor IRI")
    ident = ref(doc)
    if ident and host(ident) != host(actor):
        raise Refused(f"activity {ident} is not on its actor's host {host(actor)}")
    obj = doc.get("object")
    return Envelope(ident, kind, actor, ref(obj), obj if isinstance(obj, Mapping) else None)


def check_authority(env: Envelope) -> None:
    """An actor only creates, changes or deletes what lives on its own host."""
    if env.type in OWNED_OBJECT_TYPES and env.object_id and host(env.object_id) != host(env.actor):
        raise Refused(f"{env.actor} may not {env.type.lower()} {env.object_id}: another host owns it")


def addressed_to_public(doc: Mapping[str, Any]) -> bool:
    audience = []
    for key in ("to", "cc"):
        value = doc.get(key, [])
        audience += value if isinstance(value, list) else [value]
    return any(ref(a) in PUBLIC_ALIASES for a in audience)
