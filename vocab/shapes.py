"""SHACL validation of published and received records (``vocab/shapes.ttl``).

pyshacl is slow to start and synchronous: parse the shapes once, and call
:func:`validate` off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Final

import pyoxigraph as ox
import pyrudof
import pyshacl
import rdflib
from rdflib.namespace import SH

from vocab import VOCAB_DIR

SHAPES_FILE: Final = VOCAB_DIR / "shapes.ttl"


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of :func:`validate`.

    ``text`` is pyshacl's human-readable report; ``focus_nodes`` the sorted
    IRIs (or blank-node ids) of the nodes that failed, for error messages.
    """

    conforms: bool
    text: str
    focus_nodes: tuple[str, ...]


@cache
def shapes_graph() -> rdflib.Graph:
    """The parsed shapes graph (parsed once; do not modify it)."""
    return rdflib.Graph().parse(SHAPES_FILE, format="turtle")


def validate(data: rdflib.Graph) -> ValidationResult:
    """Check ``data`` against the node's shapes.

    No inference: the shapes target the classes documents state explicitly,
    and RDFS/OWL reasoning over PAIR is unreliable (see VOCAB.md).
    """
    conforms, report, text = pyshacl.validate(
        data,
        shacl_graph=shapes_graph(),
        inference="none",
        abort_on_first=False,
        allow_warnings=False,
    )
    report_graph: rdflib.Graph = report
    focus = sorted({str(node) for node in report_graph.objects(None, SH.focusNode)})
    return ValidationResult(conforms=bool(conforms), text=str(text), focus_nodes=tuple(focus))


# -- many records at once -----------------------------------------------------------------

_rudof = threading.local()
#: A triple outside every shape's targets: rudof adds triples only to loaded data.
_PLACEHOLDER = "<urn:oscartes:shapes> <urn:oscartes:shapes> <urn:oscartes:shapes> .\n"
#: Below this many triples (a few records: live news), triples are added to a loaded graph:
#: rudof's read_data costs some 90 ms whatever the size, add_triples about 0.2 ms a triple.
SMALL = 300


def _session(kind: str) -> pyrudof.Rudof:
    """Per thread, a session for pages (data replaced) and one for a few records (data
    added, checked, removed), each with the shapes parsed once."""
    session: pyrudof.Rudof | None = getattr(_rudof, kind, None)
    if session is None:
        session = pyrudof.Rudof(pyrudof.RudofConfig())
        session.read_shacl(SHAPES_FILE.read_text(encoding="utf-8"))
        if kind == "small":
            session.read_data(_PLACEHOLDER, pyrudof.RDFFormat.NTriples)
        setattr(_rudof, kind, session)
    return session


def violations(ntriples: str) -> dict[str, list[str]]:
    """Check many records' N-Triples at once with rudof's native SHACL engine (SHACL-SPARQL
    constraints included): focus node -> messages, empty when everything conforms.

    pyshacl takes about 100 ms a record on these shapes; rudof about 2 ms, which is what
    copying another node's directory needs. Both engines are run on the same cases in tests.
    """
    if not ntriples.strip():
        return {}
    if ntriples.count("\n") <= SMALL:  # N-Triples: a triple a line
        triples = [(str(t.subject), str(t.predicate), str(t.object))
                   for t in ox.parse(ntriples.encode(), format=ox.RdfFormat.N_TRIPLES)]  # fmt: skip
        session = _session("small")
        session.add_triples(triples, strict_iris=True)
        try:
            report = session.validate_shacl()
        finally:
            session.remove_triples(triples)
    else:
        session = _session("page")
        session.reset_data()
        session.read_data(ntriples, pyrudof.RDFFormat.NTriples)
        report = session.validate_shacl()
    found: dict[str, list[str]] = {}
    for entry in report:
        if str(entry.severity).lower().endswith("violation"):
            what = entry.message or entry.constraint_component.rsplit("#", 1)[-1]
            path = f"{entry.path}: " if entry.path else ""
            found.setdefault(str(entry.focus_node), []).append(f"{path}{what}")
    return found
