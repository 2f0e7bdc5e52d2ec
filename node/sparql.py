"""The read-only SPARQL 1.1 endpoint: checking a query, running it under limits, writing results.

No aiohttp here: node/routes/sparql.py speaks HTTP. A query is read before it reaches the
store, because Oxigraph would follow a SERVICE clause with a real HTTP request: SERVICE is
refused, updates are refused, and a FROM naming a graph the store does not hold is refused
rather than silently empty (the endpoint never fetches graphs). The store calls block and
run in a worker thread behind a semaphore; the time limit is checked row by row while the
results are read and written, and answered at the deadline when Oxigraph is still
evaluating (it has no way to cancel: that evaluation ends in its thread, holding its slot).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from node.config import Config
from node.errors import BadRequest, Forbidden, NodeError
from node.graph import EmbeddedIndex, RdfIndex, RemoteIndex
from node.results import (
    RDF_FORMATS,
    Kind,
    Row,
    choose_format,
    media_type,
    plain,
    write_boolean,
    write_solutions,
    write_triples,
)

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS_NS = "http://www.w3.org/ns/formats/"


class QuerySyntaxError(BadRequest):
    title = "Malformed query"


class UpdateRefused(Forbidden):
    title = "Read-only endpoint"


class QueryRefused(BadRequest):
    title = "Query refused"


class QueryTimeout(NodeError):
    status = 503
    title = "Query took too long"


class TooManyResults(NodeError):
    status = 422
    title = "Too many results"


class QueryFailed(NodeError):
    status = 500
    title = "Query failed"


class EndpointBusy(NodeError):
    """Every slot stayed taken while the query waited: come back after `retry_after` seconds."""

    status = 503
    title = "SPARQL endpoint busy"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def endpoint_url(config: Config) -> str:
    return f"{config.base_url}/sparql"


# ---------------------------------------------------------------- reading the query text

# Oxigraph expands \u escapes only inside IRIs and strings, as this lexer does; a `#` in an IRI
# or a string starts no comment.
_IRI = r'<(?:[^<>"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>'
_STRING = (r"'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^\"\\]|\\.|\"(?!\"\"))*\"\"\""
           r"|'(?:[^'\\\n\r]|\\.)*'|\"(?:[^\"\\\n\r]|\\.)*\"")  # fmt: skip
_TOKENS = re.compile(rf"(?P<comment>#[^\n\r]*)|(?P<string>{_STRING})|(?P<iri>{_IRI})|[^#'\"<]+|.", re.S)
# A keyword stands alone: not inside a prefixed name (ex:service), a variable or a longer word.
_WORD = r"(?<![\w:\-?$]){}(?![\w:\-])"
_SERVICE = re.compile(_WORD.format("SERVICE"), re.I)
_FORM = re.compile(_WORD.format(r"(SELECT|ASK|CONSTRUCT|DESCRIBE)"), re.I)
_UPDATE = re.compile(_WORD.format(r"(INSERT|DELETE|LOAD|CLEAR|DROP|CREATE|ADD|MOVE|COPY|WITH)"), re.I)
_FROM = re.compile(_WORD.format(r"FROM") + r"\s*(NAMED(?![\w:\-]))?\s*(" + _IRI + r"|[\w\-.]*:[^\s{}()<]*)", re.I)
_PREFIX = re.compile(_WORD.format("PREFIX") + r"\s*([\w\-.]*):\s*(" + _IRI + ")", re.I)
_BASE = re.compile(_WORD.format("BASE") + r"\s*(" + _IRI + ")", re.I)
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def code_of(query: str) -> str:
    """The query with comments and string literals blanked (IRIs kept): what keywords are read from."""
    out: list[str] = []
    for match in _TOKENS.finditer(query):
        kind = match.lastgroup
        out.append(" " if kind in ("comment", "string") else match.group())
    return "".join(out)


def _iri(token: str) -> str:
    return _UCHAR.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), token[1:-1])


@dataclass(frozen=True)
class Checked:
    """A query that may run: its form and the graphs its FROM / FROM NAMED clauses name."""

    text: str
    kind: Kind | None
    from_graphs: tuple[str, ...]
    from_named: tuple[str, ...]

    @property
    def has_dataset(self) -> bool:
        return bool(self.from_graphs or self.from_named)


def check_query(query: str, base_iri: str) -> Checked:
    """Refuse what must never run (updates, SERVICE) before the store sees the text."""
    code = code_of(query)
    form = _FORM.search(code)
    update = _UPDATE.search(code)
    if update and (form is None or update.start() < form.start()):
        raise UpdateRefused(f"this endpoint is read-only: {update.group(1).upper()} (SPARQL Update) is refused")
    if _SERVICE.search(code):
        raise QueryRefused("SERVICE is refused: this endpoint answers from its own store and never "
                           "calls another endpoint")  # fmt: skip
    kinds: dict[str, Kind] = {"SELECT": "select", "ASK": "ask", "CONSTRUCT": "graph", "DESCRIBE": "graph"}
    kind = kinds[form.group(1).upper()] if form else None
    base = base_iri
    for match in _BASE.finditer(code):
        base = urllib.parse.urljoin(base, _iri(match.group(1)))
    prefixes = {m.group(1): _iri(m.group(2)) for m in _PREFIX.finditer(code)}
    graphs: list[str] = []
    named: list[str] = []
    for match in _FROM.finditer(code):
        token = match.group(2)
        if token.startswith("<"):
            iri = urllib.parse.urljoin(base, _iri(token))
        else:
            prefix, _, local = token.partition(":")
            if prefix not in prefixes:
                continue  # Oxigraph reports the unknown prefix as a syntax error
            iri = urllib.parse.urljoin(base, prefixes[prefix]) + local
        (named if match.group(1) else graphs).append(iri)
    return Checked(query, kind, tuple(graphs), tuple(named))


def syntax_detail(exc: SyntaxError) -> str:
    """Oxigraph says "error at LINE:COLUMN: expected ..."; the position is the useful part."""
    message = str(exc)
    return f"the query does not parse: {message}" if message else "the query does not parse"


# ---------------------------------------------------------------- running


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
                raise QueryTimeout(_timeout_detail(limits))
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


def _timeout_detail(limits: Limits) -> str:
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


def _check_from(index: RdfIndex, request: QueryRequest, checked: Checked, own_graph: str) -> None:
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
        raise QueryTimeout(_timeout_detail(limits))
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
        raise QueryTimeout(_timeout_detail(limits)) from exc
    except OSError as exc:
        if "timed out" in str(exc):
            raise QueryTimeout(_timeout_detail(limits)) from exc
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


class Endpoint:
    """The concurrency cap and the limits around the store: one per application."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base_iri = endpoint_url(config)
        self.limits = Limits(config.sparql_timeout_seconds, config.sparql_max_results)
        self.slots = asyncio.Semaphore(config.sparql_concurrency)
        self.running: set[asyncio.Future[Answer]] = set()

    async def answer(self, index: RdfIndex, request: QueryRequest) -> Answer:
        checked = check_query(request.query, self.base_iri)
        timeout = self.limits.timeout
        try:  # a query waits for a slot at most as long as it may run
            async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                await self.slots.acquire()
        except TimeoutError:
            raise EndpointBusy(f"all {self.config.sparql_concurrency} query slots stayed busy for {timeout:g} s; "
                               "try again shortly", retry_after=timeout) from None  # fmt: skip
        deadline = time.monotonic() + timeout
        work = asyncio.ensure_future(asyncio.to_thread(self._run, index, request, checked, deadline))
        self.running.add(work)
        work.add_done_callback(self._finished)
        try:
            # shield: at the deadline the answer leaves; the thread stops at its next row, or,
            # inside Oxigraph's evaluation, when that ends; its slot is freed then, not before.
            async with asyncio.timeout(max(0.0, deadline - time.monotonic()) + 0.05):
                return await asyncio.shield(work)
        except TimeoutError:
            raise QueryTimeout(_timeout_detail(self.limits)) from None

    def _finished(self, work: asyncio.Future[Answer]) -> None:
        self.running.discard(work)
        self.slots.release()
        if not work.cancelled():
            work.exception()  # retrieved: a late timeout or failure is not "never retrieved"

    def _run(self, index: RdfIndex, request: QueryRequest, checked: Checked, deadline: float) -> Answer:
        _check_from(index, request, checked, self.config.graph_iri)
        if isinstance(index, RemoteIndex):
            return run_remote(index, request, checked, self.limits, deadline)
        if not isinstance(index, EmbeddedIndex):
            raise QueryFailed("this RDF index cannot answer SPARQL queries")
        return run_embedded(index.store, request, checked, self.limits, deadline, self.base_iri)

    async def drain(self, within: float) -> None:
        """At shutdown: let queries still inside Oxigraph end before the store closes."""
        if self.running:
            await asyncio.wait(list(self.running), timeout=within)


# ---------------------------------------------------------------- service description


def service_description(config: Config, graphs: Iterable[str], fmt: str) -> bytes:
    """sd:Service: where to send queries, what they may use, and the dataset they see."""
    endpoint = ox.NamedNode(endpoint_url(config))
    service = ox.NamedNode(f"{endpoint_url(config)}#service")
    dataset, default = ox.BlankNode("dataset"), ox.BlankNode("default")
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    triples: list[ox.Triple] = []

    def add(s: ox.NamedNode | ox.BlankNode, p: str, o: ox.NamedNode | ox.BlankNode | ox.Literal) -> None:
        triples.append(ox.Triple(s, rdf_type if p == "a" else ox.NamedNode(p), o))

    add(service, "a", ox.NamedNode(SD + "Service"))
    add(service, SD + "endpoint", endpoint)
    add(service, SD + "supportedLanguage", ox.NamedNode(SD + "SPARQL11Query"))
    add(service, SD + "feature", ox.NamedNode(SD + "UnionDefaultGraph"))
    for name in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                 "Turtle", "N-Triples", "N-Quads", "JSON-LD", "RDF_XML"):  # fmt: skip
        add(service, SD + "resultFormat", ox.NamedNode(FORMATS_NS + name))
    add(service, SD + "defaultDataset", dataset)
    add(dataset, "a", ox.NamedNode(SD + "Dataset"))
    add(dataset, "http://purl.org/dc/terms/source", ox.NamedNode(config.graph_iri))
    add(dataset, SD + "defaultGraph", default)
    add(default, "a", ox.NamedNode(SD + "Graph"))
    add(default, "http://purl.org/dc/terms/description",
        ox.Literal("The union of every named graph of this node", language="en"))  # fmt: skip
    for n, graph in enumerate(sorted(graphs)):
        node = ox.BlankNode(f"g{n}")
        add(dataset, SD + "namedGraph", node)
        add(node, "a", ox.NamedNode(SD + "NamedGraph"))
        add(node, SD + "name", ox.NamedNode(graph))
    prefixes = {"sd": SD, "formats": FORMATS_NS, "dcterms": "http://purl.org/dc/terms/"}
    return ox.serialize(triples, format=RDF_FORMATS[fmt], prefixes=prefixes if fmt == "turtle" else None) or b""


def named_graphs(index: RdfIndex) -> list[str]:
    if isinstance(index, EmbeddedIndex):
        return sorted(g.value for g in index.store.named_graphs() if isinstance(g, ox.NamedNode))
    return sorted(row["g"] for row in index.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { } }"))
