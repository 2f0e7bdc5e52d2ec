"""Running a checked query against the store, bounded in time and size, and writing its answer.

The functions here block: the embedded store's run in a child process (node/sparql/isolate.py),
a remote store's in a thread. The time limit is also checked row by row while the results are
read and written, so a query that streams past its deadline stops by itself.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from node.errors import NodeError
from node.graph import EmbeddedIndex, RdfIndex, RemoteIndex
from node.sparql.errors import QueryFailed, QueryRefused, QuerySyntaxError, QueryTimeout, TooManyResults
from node.sparql.query import Checked, syntax_detail
from node.sparql.results import (
    Kind,
    Row,
    choose_format,
    media_type,
    plain,
    write_boolean,
    write_solutions,
    write_triples,
)


@dataclass(frozen=True)
class QueryRequest:
    """One query as the protocol carries it (after the HTTP layer has read it)."""

    query: str
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()
    format: str | None = None
    accept: str | None = None

    @property
    def protocol_dataset(self) -> bool:
        return bool(self.default_graphs or self.named_graphs)


@dataclass
class Answer:
    kind: Kind
    format: str
    media: str
    body: bytes = b""
    count: int = 0
    #: For the HTML page: the variables and the rows as text, or the boolean.
    variables: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    boolean: bool | None = None


@dataclass(frozen=True)
class Limits:
    timeout: float
    max_results: int


def _bounded(items: Iterable[Any], limits: Limits, deadline: float, what: str) -> list[Any]:
    """Read lazy results until the end, the deadline or one past the size limit."""
    out: list[Any] = []
    iterator: Iterator[Any] = iter(items)
    try:
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return out
            except OSError as exc:
                raise QueryFailed(f"the store failed while answering: {exc}") from exc
            if time.monotonic() > deadline:
                raise QueryTimeout(timeout_detail(limits))
            out.append(item)
            if len(out) > limits.max_results:
                raise TooManyResults(
                    f"the query gives more than {limits.max_results} {what}: add a LIMIT (and OFFSET to page), "
                    f"or download the whole dataset as N-Quads from /dataset.nq"
                )
    except BaseException:
        out.clear()
        raise
    finally:
        del iterator, items  # see run_embedded: dropped in this thread


def timeout_detail(limits: Limits) -> str:
    return (f"the query did not finish within {limits.timeout:g} s: narrow it (fewer graphs, a LIMIT, "
            f"more selective patterns), or download /dataset.nq and query it locally")  # fmt: skip


def _dataset_args(request: QueryRequest, checked: Checked) -> dict[str, Any]:
    if request.protocol_dataset:  # the protocol's dataset replaces the query's (SPARQL 1.1 Protocol 2.1.4)
        return {"default_graph": [ox.NamedNode(g) for g in request.default_graphs],
                "named_graphs": [ox.NamedNode(g) for g in request.named_graphs]}  # fmt: skip
    if checked.has_dataset:  # FROM / FROM NAMED: Oxigraph's union flag would override them
        return {}
    return {"use_default_graph_as_union": True}


def held_graphs(index: RdfIndex, graphs: Iterable[str]) -> set[str]:
    """Which of these graphs the store holds (an empty GRAPH pattern: no scan of their triples)."""
    wanted = sorted(set(graphs))
    if not wanted:
        return set()
    if isinstance(index, EmbeddedIndex):
        return {g for g in wanted if index.store.contains_named_graph(ox.NamedNode(g))}
    values = " ".join(f"<{g}>" for g in wanted)
    return {row["g"] for row in index.select(f"SELECT ?g WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ }} }}")}


def check_from(index: RdfIndex, request: QueryRequest, checked: Checked, own_graph: str) -> None:
    if request.protocol_dataset:
        return
    named = checked.from_graphs + checked.from_named
    if any(any(c in g for c in '<>"{}|^`\\ ') for g in named):
        raise QueryRefused("a FROM clause names an IRI that is not valid")
    missing = sorted(set(named) - {own_graph} - held_graphs(index, named))  # its own graph even empty
    if missing:
        raise QueryRefused(
            f"FROM names {', '.join(f'<{g}>' for g in missing)}, a graph this node does not hold: the endpoint "
            "never fetches graphs; query the graphs it holds (see the service description at /sparql)"
        )


def run_embedded(store: ox.Store, request: QueryRequest, checked: Checked, limits: Limits,
                 deadline: float, base_iri: str) -> Answer:  # fmt: skip
    """Evaluate and write the answer; blocking (a worker thread calls it)."""
    try:
        result = store.query(request.query, base_iri=base_iri, **_dataset_args(request, checked))
    except SyntaxError as exc:
        raise QuerySyntaxError(syntax_detail(exc)) from exc
    except OSError as exc:
        raise QueryFailed(f"the store failed while answering: {exc}") from exc
    failure: NodeError | None = None
    try:
        answer = _write(result, request, limits, deadline)
    except NodeError as exc:
        failure = exc
    except Exception as exc:  # noqa: BLE001 - whatever it is, it leaves as a problem, not a crash
        failure = QueryFailed(f"the query failed: {exc}")
    # pyoxigraph's lazy results may only be dropped in the thread that made them: a traceback
    # would keep them alive until the event loop's thread drops the error.
    del result
    if failure is not None:
        failure.__traceback__ = failure.__cause__ = failure.__context__ = None
        raise failure
    return answer


def _write(result: ox.QueryBoolean | ox.QuerySolutions | ox.QueryTriples, request: QueryRequest,
           limits: Limits, deadline: float) -> Answer:  # fmt: skip
    if time.monotonic() > deadline:
        raise QueryTimeout(timeout_detail(limits))
    if isinstance(result, ox.QueryBoolean):
        fmt = choose_format("ask", request.format, request.accept)
        answer = Answer("ask", fmt, media_type("ask", fmt), boolean=bool(result), count=1)
        if fmt != "html":
            answer.body = write_boolean(fmt, bool(result))
        return answer
    if isinstance(result, ox.QuerySolutions):
        fmt = choose_format("select", request.format, request.accept)
        variables = [v.value for v in result.variables]
        rows: list[Row] = [tuple(sol) for sol in _bounded(result, limits, deadline, "rows")]
        answer = Answer("select", fmt, media_type("select", fmt), variables=variables, count=len(rows))
        if fmt == "html":
            answer.rows = [[plain(t) for t in row] for row in rows]
        else:
            answer.body = write_solutions(fmt, variables, rows)
        return answer
    fmt = choose_format("graph", request.format, request.accept)
    triples = _bounded(result, limits, deadline, "triples")
    body = write_triples("turtle" if fmt == "html" else fmt, triples)
    return Answer("graph", fmt, media_type("graph", fmt), body=body, count=len(triples))


def run_remote(index: RemoteIndex, request: QueryRequest, checked: Checked, limits: Limits,
               deadline: float) -> Answer:  # fmt: skip
    """Forward to the store's query URL with the same protocol parameters; its answer is passed on.
    The store applies its own size limits: rows are not counted here."""
    kind: Kind = checked.kind or "select"
    fmt = choose_format(kind, request.format, request.accept)
    wire = "turtle" if (kind == "graph" and fmt == "html") else ("json" if fmt == "html" else fmt)
    defaults, named = request.default_graphs, request.named_graphs
    if not request.protocol_dataset and not checked.has_dataset:
        # The union default graph, in the protocol's own terms: any store honours it.
        defaults = named = tuple(named_graphs(index))
    params = [("query", request.query)] + [("default-graph-uri", g) for g in defaults]
    params += [("named-graph-uri", g) for g in named]
    http = urllib.request.Request(  # noqa: S310 - RemoteIndex checked the scheme
        index.query_url, data=urllib.parse.urlencode(params).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": media_type(kind, wire)},
    )  # fmt: skip
    remaining = max(0.1, deadline - time.monotonic())
    try:
        # The store URL is the operator's setting, not input.
        with urllib.request.urlopen(http, timeout=remaining) as response:  # noqa: S310
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        if exc.code == 400:
            raise QuerySyntaxError(f"the SPARQL store refused the query: {detail}") from exc
        raise QueryFailed(f"the SPARQL store answered {exc.code}: {detail}") from exc
    except TimeoutError as exc:
        raise QueryTimeout(timeout_detail(limits)) from exc
    except OSError as exc:
        if "timed out" in str(exc):
            raise QueryTimeout(timeout_detail(limits)) from exc
        raise QueryFailed(f"the SPARQL store is unreachable: {exc}") from exc
    answer = Answer(kind, fmt, media_type(kind, fmt), body=body)
    if fmt == "html" and kind != "graph":
        parsed = json.loads(body)
        if "boolean" in parsed:
            answer.boolean = bool(parsed["boolean"])
        else:
            answer.variables = list(parsed["head"]["vars"])
            answer.rows = [[b.get(v, {}).get("value", "") for v in answer.variables]
                           for b in parsed["results"]["bindings"]]  # fmt: skip
    return answer


def named_graphs(index: RdfIndex) -> list[str]:
    if isinstance(index, EmbeddedIndex):
        return sorted(g.value for g in index.store.named_graphs() if isinstance(g, ox.NamedNode))
    return sorted(row["g"] for row in index.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { } }"))
