"""WebFinger (RFC 7033) as Mastodon uses it: handles, the JRD we serve, host-meta, and lookups.

Mastodon finds `@name@host` only through the `rel=self` link typed as ActivityPub, and then
checks the loop: the actor's preferredUsername@host must WebFinger back to the same id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from yarl import URL

from federation.errors import MalformedActivity
from federation.fetch import GuardedClient, media_type

AS2_TYPE = "application/activity+json"
AS2_PROFILE = "https://www.w3.org/ns/activitystreams"
JRD_TYPE = "application/jrd+json"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"
XRD_NS = "http://docs.oasis-open.org/ns/xri/xrd-1.0"

# RFC 3986 unreserved characters: what acct: userparts use in practice (Mastodon is narrower).
_USER = r"[A-Za-z0-9._~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HANDLE = re.compile(rf"(?P<user>{_USER})@(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?")


def parse_handle(text: str) -> tuple[str, str]:
    """`@user@host`, `user@host` or `acct:user@host` → (user, host[:port]); the host is lower-cased."""
    handle = text.strip()
    if handle[:5].lower() == "acct:":
        handle = handle[5:]
    elif handle.startswith("@"):
        handle = handle[1:]
    if not handle.isascii():
        try:
            user, _, host = handle.rpartition("@")
            handle = f"{user}@{host.encode('idna').decode('ascii')}"
        except UnicodeError:
            raise MalformedActivity(f"{text!r} is not a handle: its host is not a valid name") from None
    match = _HANDLE.fullmatch(handle)
    if match is None:
        raise MalformedActivity(f"{text!r} is not a handle like @name@host.example")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise MalformedActivity(f"{text!r} is not a handle: port {port} is out of range")
    host = match["host"].lower() + (f":{int(port)}" if port else "")
    return match["user"], host


def webfinger_document(subject: str, actor_id: str, profile_url: str, subscribe_template: str,
                       aliases: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    """The JRD served for `subject` (acct:name@host), as Mastodon expects it."""
    return {
        "subject": subject,
        "aliases": list(aliases),
        "links": [
            {"rel": "self", "type": AS2_TYPE, "href": actor_id},
            {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile_url},
            {"rel": SUBSCRIBE_REL, "template": subscribe_template},
        ],
    }


def host_meta_xml(base_url: str) -> str:
    """/.well-known/host-meta: older clients find the WebFinger endpoint through its lrdd template."""
    template = f"{base_url.rstrip('/')}/.well-known/webfinger?resource={{uri}}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<XRD xmlns="{XRD_NS}">\n'
        f'  <Link rel="lrdd" template={quoteattr(template)}/>\n'
        "</XRD>\n"
    )


def is_activitypub_type(value: object) -> bool:
    """application/activity+json, or application/ld+json with the ActivityStreams profile."""
    if not isinstance(value, str):
        return False
    kind = media_type(value)
    if kind == AS2_TYPE:
        return True
    if kind != "application/ld+json":
        return False
    params = (part.split("=", 1) for part in value.split(";")[1:] if "=" in part)
    profiles = (v.strip().strip('"') for k, v in params if k.strip().lower() == "profile")
    return any(AS2_PROFILE in profile.split() for profile in profiles)


def _is_http_url(value: object) -> bool:
    try:
        url = URL(value) if isinstance(value, str) else None
    except ValueError:
        return False
    return url is not None and url.scheme in ("http", "https") and bool(url.host)


async def resolve_handle(client: GuardedClient, handle: str, *, scheme: str = "https") -> str:
    """The actor id `handle` names, from its host's WebFinger `self` link.

    `scheme="http"` exists for nodes on loopback in tests; federation proper is https.
    """
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {scheme!r}")
    user, host = parse_handle(handle)
    resource = f"acct:{user}@{host}"
    url = URL.build(scheme=scheme, authority=host, path="/.well-known/webfinger", query={"resource": resource})
    final_url, jrd = await client.get_json(str(url), accept=f"{JRD_TYPE}, application/json")
    links = jrd.get("links")
    if not isinstance(links, list):
        raise MalformedActivity(f"WebFinger for {resource} ({final_url}) has no links array")
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "self" and is_activitypub_type(link.get("type")):
            href = link.get("href")
            if not _is_http_url(href):
                raise MalformedActivity(f"WebFinger for {resource} ({final_url}): self link href {href!r} "
                                        "is not an http(s) URL")  # fmt: skip
            return str(href)
    raise MalformedActivity(
        f"WebFinger for {resource} ({final_url}) has no rel=self link of type {AS2_TYPE}: not an ActivityPub actor"
    )
