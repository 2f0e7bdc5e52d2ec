"""The RDF index: one named graph per origin, in Oxigraph (embedded) or any SPARQL 1.1 store.

Both back ends are driven through the same SPARQL Update text, so the remote path is the
embedded path with another transport. Calls here block: callers run them off the loop.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import pyoxigraph as ox

from node.errors import NodeError, StoreBusy

log = logging.getLogger(__name__)

SCHEMES_GRAPH = "https://w3id.org/oscartes/vocab"
_FRAGMENT = 'isIRI(?{v}) && STRSTARTS(STR(?{v}), "{prefix}")'


class StoreError(NodeError):
    status = 502
    title = "RDF store error"


class RdfIndex(Protocol):
    def update(self, sparql: str) -> None: ...

    def load(self, graph: str, ntriples: str) -> None: ...

    def load_new(self, graph: str, ntriples: str) -> None: ...

    def select(self, sparql: str) -> list[dict[str, str]]: ...

    def close(self) -> None: ...


def _sparql_iri(iri: str) -> str:
    if any(c in iri for c in '<>"{}|^`\\ \n'):
        raise ValueError(f"not an IRI usable in SPARQL: {iri!r}")
    return f"<{iri}>"


def record_delete(graph: str, iri: str) -> str:
    """Remove a record's triples: its IRI and the fragment nodes under it (two levels deep)."""
    g, s = _sparql_iri(graph), _sparql_iri(iri)
    prefix = iri.replace('"', "") + "#"
    f1 = _FRAGMENT.format(v="n1", prefix=prefix)
    f2 = _FRAGMENT.format(v="n2", prefix=prefix)
    return (
        f"DELETE {{ GRAPH {g} {{ ?s ?p ?o }} }} WHERE {{ GRAPH {g} {{"
        f" {{ {s} ?p ?o BIND({s} AS ?s) }}"
        f" UNION {{ {s} ?p1 ?n1 FILTER({f1}) ?n1 ?p ?o BIND(?n1 AS ?s) }}"
        f" UNION {{ {s} ?p1 ?n1 FILTER({f1}) ?n1 ?p2 ?n2 FILTER({f2}) ?n2 ?p ?o BIND(?n2 AS ?s) }}"
        f" }} }}"
    )


def insert_data(graph: str, ntriples: str) -> str:
    return f"INSERT DATA {{ GRAPH {_sparql_iri(graph)} {{\n{ntriples}\n}} }}"


def replace_steps(graph: str, iri: str, ntriples: str) -> list[str]:
    """The SPARQL Update operations making the index hold exactly `ntriples` for a record."""
    steps = [record_delete(graph, iri)]
    if ntriples.strip():
        steps.append(insert_data(graph, ntriples))
    return steps


def replace_record(index: RdfIndex, graph: str, iri: str, ntriples: str) -> None:
    """Make the index hold exactly `ntriples` for the record (nothing when it is deleted)."""
    index.update(" ;\n".join(replace_steps(graph, iri, ntriples)))


def present(index: RdfIndex, graph: str, iris: list[str]) -> set[str]:
    """Which of these subjects already have triples in the graph."""
    if not iris:
        return set()
    values = " ".join(_sparql_iri(i) for i in iris)
    query = f"SELECT DISTINCT ?s WHERE {{ VALUES ?s {{ {values} }} GRAPH {_sparql_iri(graph)} {{ ?s ?p ?o }} }}"
    return {row["s"] for row in index.select(query)}


def write_records(index: RdfIndex, graph: str, triples: dict[str, str], iris: list[str]) -> None:
    """Make the graph hold exactly `triples[iri]` (nothing if absent) for each record: records
    it already holds are replaced by SPARQL Update, new ones loaded by the store's parser,
    several times faster (a copy of another node is mostly new records)."""
    held = present(index, graph, iris)
    steps = [step for iri in iris if iri in held for step in replace_steps(graph, iri, triples.get(iri, ""))]
    if steps:
        index.update(" ;\n".join(steps))
    fresh = "".join(triples.get(iri, "") for iri in iris if iri not in held)
    if fresh.strip():
        index.load_new(graph, fresh)


def replace_graph(index: RdfIndex, graph: str, chunks: Iterable[str]) -> int:
    index.update(f"CLEAR SILENT GRAPH {_sparql_iri(graph)}")
    count = 0
    for chunk in chunks:
        index.load(graph, chunk)
        count += 1
    return count


class EmbeddedIndex:
    """pyoxigraph's on-disk store. It takes a lock on its folder: one process at a time."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.store = ox.Store(str(path))
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(
                    f"the RDF store in {path} is in use by another process (is `oscartes serve` running?)"
                ) from exc
            raise

    def update(self, sparql: str) -> None:
        self.store.update(sparql)

    def load(self, graph: str, ntriples: str) -> None:
        self.store.load(ntriples, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph))

    def load_new(self, graph: str, ntriples: str) -> None:
        """Oxigraph's bulk loader, for records the graph does not hold yet: about twice as fast,
        and not atomic, which the durable index rows make safe: a load cut short leaves its row,
        whose replay finds the records present and replaces them (a graph is a set)."""
        self.store.bulk_load(ntriples, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph))

    def select(self, sparql: str) -> list[dict[str, str]]:
        result = self.store.query(sparql)
        assert isinstance(result, ox.QuerySolutions)
        names = [v.value for v in result.variables]
        return [
            {n: sol[n].value for n in names if sol[n] is not None}
            for sol in result
        ]

    def close(self) -> None:
        self.store.flush()
        del self.store


class RemoteIndex:
    """A SPARQL 1.1 Protocol store (Oxigraph server, Fuseki...) given by its query URL."""

    def __init__(self, query_url: str, update_url: str = "", timeout: float = 30.0) -> None:
        for url in (query_url, update_url):
            if url and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"a SPARQL store URL must be http(s): {url!r}")
        self.query_url = query_url
        self.update_url = update_url or default_update_url(query_url)
        self.timeout = timeout

    def _post(self, url: str, body: bytes, content_type: str, accept: str) -> bytes:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            url, data=body, method="POST", headers={"Content-Type": content_type, "Accept": accept}
        )
        try:
            # The store URL is the operator's setting (http or https, checked at start), not input.
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise StoreError(f"SPARQL store {url} answered {exc.code}: {detail}") from exc
        except OSError as exc:
            raise StoreError(f"SPARQL store {url} unreachable: {exc}") from exc

    def update(self, sparql: str) -> None:
        self._post(self.update_url, sparql.encode(), "application/sparql-update", "*/*")

    def load(self, graph: str, ntriples: str) -> None:
        self.update(insert_data(graph, ntriples))

    def load_new(self, graph: str, ntriples: str) -> None:
        self.load(graph, ntriples)

    def select(self, sparql: str) -> list[dict[str, str]]:
        import json

        raw = self._post(self.query_url, sparql.encode(), "application/sparql-query",
                         "application/sparql-results+json")  # fmt: skip
        data = json.loads(raw)
        return [{k: v["value"] for k, v in row.items()} for row in data["results"]["bindings"]]

    def close(self) -> None:
        return None


def default_update_url(query_url: str) -> str:
    """Oxigraph serves /query and /update; Fuseki /ds/query (or /ds/sparql) and /ds/update."""
    parts = urllib.parse.urlsplit(query_url)
    path = parts.path.rstrip("/")
    for suffix in ("/query", "/sparql"):
        if path.endswith(suffix):
            path = path[: -len(suffix)] + "/update"
            break
    else:
        path = path + "/update"
    return urllib.parse.urlunsplit(parts._replace(path=path))


def open_index(store: str, data_dir: Path, update_url: str = "") -> RdfIndex:
    if store == "embedded":
        return EmbeddedIndex(data_dir / "rdf")
    return RemoteIndex(store, update_url)
