"""SHACL validation of published and received records (``vocab/shapes.ttl``).

pyshacl is slow to start and synchronous: parse the shapes once, and call
:func:`validate` off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

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
