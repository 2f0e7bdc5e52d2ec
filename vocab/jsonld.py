"""A small typed facade over pyld, which ships no type information.

Every JSON-LD operation of the node goes through here, so that (1) the
offline loader is always passed explicitly and (2) pyld's errors reach
callers as two plain ``ValueError`` subclasses: :class:`UnknownContextError`
(a context we do not vendor) and :class:`JsonLdSyntaxError` (anything else
wrong with the input).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import rdflib
from pyld import jsonld as _pyld  # type: ignore[import-untyped, unused-ignore]

from vocab import AS2_CONTEXT
from vocab.loader import DocumentLoader, UnknownContextError

__all__ = [
    "Expansion",
    "JsonLdSyntaxError",
    "UnknownContextError",
    "as_compact_as2",
    "compact",
    "expand",
    "expand_leniently",
    "to_graph",
    "to_nquads",
    "without_contexts",
]

# pyld >= 3 can report dropped keys; older versions silently drop them.
#: pyld keeps module-level caches (resolved contexts) that are not thread-safe; callers run
#: it in worker threads (the API, the inbox worker), so its calls take turns.
_PYLD: Final = threading.Lock()
_CAN_REPORT_DROPS: Final = "on_property_dropped" in inspect.signature(_pyld.expand).parameters


class JsonLdSyntaxError(ValueError):
    """The input is not valid JSON-LD (or, in strict mode, not fully mapped)."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _translate(exc: Exception) -> ValueError:
    for cause in _causes(exc):
        if isinstance(cause, UnknownContextError):
            return UnknownContextError(cause.url)
    # pyld wraps the error that explains the problem in generic ones
    # ("Could not expand input."): report the innermost, which names it.
    errors = [c for c in _causes(exc) if isinstance(c, _pyld.JsonLdError)]
    if errors:
        inner = errors[-1]
        message = str(inner.args[0]) if inner.args else "invalid JSON-LD"
        code = f" ({inner.code})" if getattr(inner, "code", None) else ""
        return JsonLdSyntaxError(f"{message}{code}")
    return JsonLdSyntaxError(f"invalid JSON-LD: {type(exc).__name__}: {exc}")


def _options(loader: DocumentLoader, base: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"documentLoader": loader}
    if base is not None:
        options["base"] = base
    return options


# pyld raises TypeError/KeyError/AttributeError on some malformed inputs
# instead of JsonLdError; inbound documents are untrusted, so those are input
# errors too, not crashes.
_PYLD_ERRORS: Final = (_pyld.JsonLdError, TypeError, KeyError, AttributeError)


def _blank_terms(node: Any, path: str = "") -> Iterator[str]:
    """Keys and types that expanded to blank nodes (AS2's ``@vocab: "_:"``)."""
    if isinstance(node, list):
        for item in node:
            yield from _blank_terms(item, path)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("_:"):
                yield f"{path}/{key}"
            if key == "@type":
                types = value if isinstance(value, list) else [value]
                yield from (f"{path}/@type={t}" for t in types if str(t).startswith("_:"))
            elif key != "@value":
                yield from _blank_terms(value, f"{path}/{key}")


def expand(
    doc: Mapping[str, Any] | list[Any],
    *,
    loader: DocumentLoader,
    base: str | None = None,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Expand ``doc``; with ``strict``, refuse keys or types we cannot map.

    Strict mode is how we check our own documents: under AS2's
    ``"@vocab": "_:"`` an undefined term becomes a blank-node predicate that
    N-Quads output then silently drops.
    """
    dropped: list[str | None] = []
    kwargs: dict[str, Any] = {}
    if strict and _CAN_REPORT_DROPS:
        kwargs["on_property_dropped"] = dropped.append
    try:
        with _PYLD:
            result: list[dict[str, Any]] = _pyld.expand(doc, _options(loader, base), **kwargs)
    except _PYLD_ERRORS as exc:
        raise _translate(exc) from exc
    if strict:
        problems = [f"dropped key {key!r}" for key in dropped]
        problems += [f"blank-node term at {where}" for where in _blank_terms(result)]
        if problems:
            raise JsonLdSyntaxError("; ".join(problems))
    return result


@dataclass(frozen=True)
class Expansion:
    """What :func:`expand_leniently` made of a document."""

    nodes: list[dict[str, Any]]
    #: Why the document's own contexts were set aside and it was read as compact AS2; None
    #: when they were used.
    set_aside: UnknownContextError | JsonLdSyntaxError | None = None


def as_compact_as2(value: Any) -> Any:
    """`value` read as compact AS2: every `@context` in it dropped, AS2's put at the root.

    This is how Mastodon reads every activity (it never expands JSON-LD on delivery): the keys
    mean what they mean in ActivityStreams, whatever the sender's contexts add.
    """
    stripped = without_contexts(value)
    return {"@context": AS2_CONTEXT, **stripped} if isinstance(stripped, dict) else stripped


def without_contexts(value: Any) -> Any:
    """A copy of `value` with every `@context` dropped, at any depth."""
    if isinstance(value, Mapping):
        return {k: without_contexts(v) for k, v in value.items() if k != "@context"}
    if isinstance(value, list):
        return [without_contexts(v) for v in value]
    return value


def expand_leniently(
    doc: Mapping[str, Any],
    *,
    loader: DocumentLoader,
    base: str | None = None,
) -> Expansion:
    """Expand ``doc`` with its own contexts or, when they cannot be loaded or processed, as
    compact AS2 (:func:`as_compact_as2`), saying why. A context this node cannot read is the
    sender's choice, not a fault of the activity; a body that does not read even as AS2 is:
    that raises :class:`JsonLdSyntaxError`."""
    if "@context" not in doc:
        # ActivityStreams 2.0 (Core, 2.1): without the AS2 context, it applies all the same.
        doc = {"@context": AS2_CONTEXT, **doc}
    try:
        return Expansion(expand(doc, loader=loader, base=base))
    except (UnknownContextError, JsonLdSyntaxError) as exc:
        set_aside = exc
    return Expansion(expand(as_compact_as2(doc), loader=loader, base=base), set_aside)


def compact(
    doc: Mapping[str, Any] | list[Any],
    context: Any,
    *,
    loader: DocumentLoader,
    base: str | None = None,
) -> dict[str, Any]:
    """Compact ``doc`` against ``context`` (a URL, a context object or a list)."""
    try:
        with _PYLD:
            result: dict[str, Any] = _pyld.compact(doc, context, _options(loader, base))
    except _PYLD_ERRORS as exc:
        raise _translate(exc) from exc
    return result


def to_nquads(
    doc: Mapping[str, Any] | list[Any],
    *,
    loader: DocumentLoader,
    base: str | None = None,
) -> str:
    """``doc`` as N-Quads, one statement per line, sorted and de-duplicated.

    Sorting makes equal documents give equal text; blank-node labels are
    pyld's (not canonicalised), hence "canonical-ish".
    """
    options = _options(loader, base)
    options["format"] = "application/n-quads"
    try:
        with _PYLD:
            text: str = _pyld.to_rdf(doc, options)
    except _PYLD_ERRORS as exc:
        raise _translate(exc) from exc
    lines = sorted({line for line in text.splitlines() if line.strip()})
    return "".join(f"{line}\n" for line in lines)


def _term(term: Mapping[str, str]) -> rdflib.term.Node:
    value = term["value"]
    if term["type"] == "IRI":
        return rdflib.URIRef(value)
    if term["type"] == "blank node":
        return rdflib.BNode(value.removeprefix("_:"))
    if term.get("language"):
        return rdflib.Literal(value, lang=term["language"])
    datatype = term.get("datatype")
    # rdflib tells "x" from "x"^^xsd:string; RDF 1.1 does not, and neither do
    # the Turtle shapes, so keep plain strings plain.
    if datatype is None or datatype == _XSD_STRING:
        return rdflib.Literal(value)
    return rdflib.Literal(value, datatype=rdflib.URIRef(datatype))


_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"


def to_graph(
    doc: Mapping[str, Any] | list[Any],
    *,
    loader: DocumentLoader,
    base: str | None = None,
) -> rdflib.Graph:
    """The triples of ``doc`` (all its graphs merged) as an rdflib Graph."""
    try:
        with _PYLD:
            dataset: dict[str, list[dict[str, Mapping[str, str]]]] = _pyld.to_rdf(doc, _options(loader, base))
    except _PYLD_ERRORS as exc:
        raise _translate(exc) from exc
    graph = rdflib.Graph()
    for triples in dataset.values():
        for triple in triples:
            subject, predicate, obj = (_term(triple[k]) for k in ("subject", "predicate", "object"))
            graph.add((subject, predicate, obj))
    return graph
