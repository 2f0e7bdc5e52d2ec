"""The offline JSON-LD document loader.

A node processes documents from strangers: letting pyld fetch whatever
``@context`` URL they name would be an SSRF and a way to change what our own
data means. So every context is vendored (``vocab/contexts``), a few by the path
every instance of a server software serves them under (``VENDORED_PATHS``), and
any other URL is refused with :class:`UnknownContextError`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit

from vocab import VOCAB_DIR

# The callable pyld calls as ``loader(url, options)``; it returns a "remote
# document" dict (contentType, contextUrl, documentUrl, document).
DocumentLoader = Callable[[str, dict[str, Any]], dict[str, Any]]

CONTEXTS_DIR: Final = VOCAB_DIR / "contexts"
OWN_CONTEXT_FILE: Final = VOCAB_DIR / "context.jsonld"

# file -> URLs it answers for. Variants that differ only by scheme, a
# trailing '/' or a fragment are folded by _normalise(), so only genuinely
# different paths are listed.
VENDORED: Final[Mapping[str, tuple[str, ...]]] = {
    "activitystreams.jsonld": (
        "https://www.w3.org/ns/activitystreams",
        "https://www.w3.org/ns/activitystreams.jsonld",
    ),
    "security-v1.jsonld": ("https://w3id.org/security/v1",),
    "data-integrity-v1.jsonld": ("https://w3id.org/security/data-integrity/v1",),
    "data-integrity-v2.jsonld": ("https://w3id.org/security/data-integrity/v2",),
    "multikey-v1.jsonld": ("https://w3id.org/security/multikey/v1",),
    "identity-v1.jsonld": ("https://w3id.org/identity/v1",),
    "did-v1.jsonld": ("https://www.w3.org/ns/did/v1",),
    "webfinger.jsonld": ("https://purl.archive.org/socialweb/webfinger",),
    # What Fedify and GoToSocial put in their activities (copies of Fedify's preloaded contexts).
    "gotosocial.jsonld": ("https://gotosocial.org/ns",),
    "fep-5711.jsonld": ("https://w3id.org/fep/5711",),
    "fep-ef61.jsonld": ("https://w3id.org/fep/ef61",),
    "cid-v1.jsonld": ("https://www.w3.org/ns/cid/v1",),
    "lemmy.jsonld": ("https://join-lemmy.org/context.json",),
    "miscellany.jsonld": ("https://purl.archive.org/miscellany",),
    # What Mobilizon puts in its activities.
    "litepub.jsonld": ("https://litepub.social/litepub/context.jsonld",),
    "schema.jsonld": (
        "https://schema.org",
        "https://schema.org/docs/jsonldcontext.jsonld",
        "https://schema.org/docs/jsonldcontext.json",
    ),
}


#: Contexts a server software serves from each instance's own host under one path: path -> the
#: files read together for it. Pleroma and Akkoma (its fork) both send
#: `https://{instance}/schemas/litepub-0.1.jsonld`; their copies differ only by the terms each
#: adds (no term is defined two ways), so the two are read as one context that has them all.
VENDORED_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    "/schemas/litepub-0.1.jsonld": ("litepub-0.1-pleroma.jsonld", "litepub-0.1-akkoma.jsonld"),
}


class UnknownContextError(ValueError):
    """A document names a context URL this node does not vendor."""

    def __init__(self, url: str) -> None:
        super().__init__(f"unknown remote JSON-LD context {url}: this node loads no context from the network")
        self.url = url


def _normalise(url: str) -> str:
    """Fold the spellings under which the same context is referenced.

    http and https name the same published context; a fragment is never sent
    to a server, and publishers disagree on the trailing slash.
    """
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.netloc.lower()}{path}{query}"


def _read_json(path_name: str) -> dict[str, Any]:
    with (CONTEXTS_DIR / path_name).open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


@cache
def vendored_context(file_name: str) -> Mapping[str, Any]:
    """One vendored context document, parsed once. Do not mutate it."""
    if "/" in file_name or "\\" in file_name:
        raise ValueError(f"not a vendored context file name: {file_name!r}")
    return _read_json(file_name)


@cache
def _vendored_index() -> Mapping[str, str]:
    return {_normalise(url): name for name, urls in VENDORED.items() for url in urls}


def _path(url: str) -> str:
    return urlsplit(url.strip()).path.rstrip("/")


@cache
def _path_context(path: str) -> Mapping[str, Any]:
    """The document served for a path on any host: its files' @context lists, one after the other."""
    parts: list[Any] = []
    for name in VENDORED_PATHS[path]:
        inner = vendored_context(name)["@context"]
        parts += inner if isinstance(inner, list) else [inner]
    return {"@context": parts}


@cache
def _own_context() -> Mapping[str, Any]:
    with OWN_CONTEXT_FILE.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def own_context() -> dict[str, Any]:
    """The node's context document (``vocab/context.jsonld``), parsed once.

    A fresh copy each call: callers embed it in responses and may alter it.
    """
    return copy.deepcopy(dict(_own_context()))


def _remote(url: str, document: Mapping[str, Any], *, static: bool) -> dict[str, Any]:
    remote: dict[str, Any] = {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        # pyld rewrites relative @context URLs in place: never hand it ours.
        "document": copy.deepcopy(dict(document)),
    }
    if static:
        # pyld shares resolved contexts tagged "static" across operations;
        # vendored files never change, so processing them once is safe.
        remote["tag"] = "static"
    return remote


def is_known(url: str, extra: Mapping[str, Any] | None = None) -> bool:
    """Whether the loader (with `extra`) can serve `url` without the network; cheap to ask."""
    key = _normalise(url)
    return (key in _vendored_index() or _path(url) in VENDORED_PATHS
            or any(_normalise(e) == key for e in (extra or {})))  # fmt: skip


def make_document_loader(
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> DocumentLoader:
    """A pyld document loader serving the vendored contexts plus ``extra``.

    ``extra`` maps further URLs (typically the node's own
    ``{base}/ns/context.jsonld``) to their documents. It may not redefine a
    vendored URL: pyld caches vendored contexts across loaders, so an
    override would be silently ignored.
    """
    index = _vendored_index()
    extras: dict[str, Mapping[str, Any]] = {}
    for url, document in (extra or {}).items():
        key = _normalise(url)
        if key in index or _path(url) in VENDORED_PATHS:
            raise ValueError(f"{url} is a vendored context and cannot be replaced")
        extras[key] = document

    def load(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        key = _normalise(url)
        name = index.get(key)
        if name is not None:
            return _remote(url, vendored_context(name), static=True)
        if _path(url) in VENDORED_PATHS:
            return _remote(url, _path_context(_path(url)), static=True)
        document = extras.get(key)
        if document is not None:
            return _remote(url, document, static=False)
        raise UnknownContextError(url)

    return load
