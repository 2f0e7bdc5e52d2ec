"""The SKOS concept schemes every node ships (themes, needs, legal forms, gears).

Concept IRIs live under ``https://w3id.org/oscartes/vocab/`` so a theme has
one IRI across the federation; each node serves them at ``/vocab/...``. The
Turtle files are parsed once, on first use, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final

import rdflib
from rdflib.namespace import SKOS

from vocab import OSC, SCHEMES, VOCAB_BASE, VOCAB_DIR

SCHEMES_DIR: Final = VOCAB_DIR / "schemes"
_DEFAULT_ACTION: Final = rdflib.URIRef(f"{OSC}defaultAction")


@dataclass(frozen=True)
class Concept:
    """One SKOS concept, as the node needs it.

    ``scheme`` is the scheme's short name (``"themes"``...), not its IRI; see
    :func:`scheme_iri`. ``broader``/``narrower`` hold IRIs of direct parents
    and children. ``default_action`` is the ValueFlows action a need category
    implies (``"deliverService"`` or ``"transfer"``), None elsewhere.
    """

    iri: str
    scheme: str
    notation: str
    labels: Mapping[str, str] = field(compare=False, hash=False)
    broader: tuple[str, ...] = ()
    narrower: tuple[str, ...] = ()
    default_action: str | None = None

    def label(self, language: str = "fr") -> str:
        """The preferred label in ``language``, else French, else the notation."""
        return self.labels.get(language) or self.labels.get("fr") or self.notation


def scheme_iri(scheme: str) -> str:
    """``https://w3id.org/oscartes/vocab/{scheme}``; unknown names are refused."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown concept scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    return f"{VOCAB_BASE}{scheme}"


def scheme_files() -> dict[str, Path]:
    """Scheme name -> its Turtle file."""
    return {scheme: SCHEMES_DIR / f"{scheme}.ttl" for scheme in SCHEMES}


@cache
def _graph() -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in scheme_files().values():
        graph.parse(path, format="turtle")
    return graph


def _sorted_iris(graph: rdflib.Graph, subject: rdflib.URIRef, predicate: rdflib.URIRef) -> tuple[str, ...]:
    return tuple(sorted(str(o) for o in graph.objects(subject, predicate)))


@cache
def _concepts() -> Mapping[str, Concept]:
    graph = _graph()
    schemes_by_iri = {scheme_iri(name): name for name in SCHEMES}
    found: dict[str, Concept] = {}
    for subject in graph.subjects(rdflib.RDF.type, SKOS.Concept):
        if not isinstance(subject, rdflib.URIRef):
            continue
        scheme = next(
            (schemes_by_iri[str(s)] for s in graph.objects(subject, SKOS.inScheme) if str(s) in schemes_by_iri),
            None,
        )
        notation = graph.value(subject, SKOS.notation)
        if scheme is None or notation is None:
            # A concept outside our schemes or without notation cannot be
            # looked up by (scheme, notation): the scheme tests flag it.
            continue
        labels = {
            label.language or "": str(label)
            for label in graph.objects(subject, SKOS.prefLabel)
            if isinstance(label, rdflib.Literal)
        }
        action = graph.value(subject, _DEFAULT_ACTION)
        found[str(subject)] = Concept(
            iri=str(subject),
            scheme=scheme,
            notation=str(notation),
            labels=MappingProxyType(labels),
            broader=_sorted_iris(graph, subject, SKOS.broader),
            narrower=_sorted_iris(graph, subject, SKOS.narrower),
            default_action=str(action) if action is not None else None,
        )
    return MappingProxyType(found)


def concepts() -> Mapping[str, Concept]:
    """Every concept of every scheme, by IRI (read-only, built once)."""
    return _concepts()


def concept(scheme: str, notation: str) -> Concept | None:
    """The concept ``notation`` of ``scheme``, or None if there is none."""
    return _concepts().get(f"{scheme_iri(scheme)}/{notation}")


def in_scheme(iri: str, scheme: str) -> bool:
    """Whether ``iri`` is a concept of ``scheme``."""
    found = _concepts().get(iri)
    return found is not None and found.scheme == scheme


def narrower_closure(iri: str) -> frozenset[str]:
    """``iri`` and every concept below it (empty if ``iri`` is not a concept).

    Used to widen a theme filter: asking for "reuse" also finds "repair".
    """
    index = _concepts()
    if iri not in index:
        return frozenset()
    seen = {iri}
    pending = [iri]
    while pending:
        for child in index[pending.pop()].narrower:
            if child not in seen and child in index:
                seen.add(child)
                pending.append(child)
    return frozenset(seen)


@cache
def schemes_ntriples() -> str:
    """All four schemes as N-Triples (sorted lines), for loading into a store."""
    text = _graph().serialize(format="nt")
    lines = sorted({line for line in text.splitlines() if line.strip()})
    return "".join(f"{line}\n" for line in lines)
