"""Statistics for local authorities: counts by dimension (SQL GROUP BY), records created per month,
and the links between structures as a graph (one SPARQL SELECT). Queries take the caller's
connection or index; tables and their CSV/GraphML renderings are pure (docs/statistics.md)."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from node.communes import REGIONS, commune, communes
from node.convert.rdf import AS, FEP_8A8E, PAIR
from node.origins import blocked_graphs
from node.places import DEPARTEMENTS
from node.records import KIND_LABELS
from node.storage.tables import origins, record_themes, records
from vocab import schemes

DIMENSIONS = ("theme", "kind", "commune", "departement", "region", "origin")
KINDS = tuple(KIND_LABELS)
#: Label columns that follow each dimension's value, in this order.
LABELS: Mapping[str, tuple[str, ...]] = {
    "theme": ("theme_notation", "theme_label"), "kind": ("kind_label",), "commune": ("commune_name",),
    "departement": ("departement_name",), "region": ("region_name",), "origin": ("origin_name",), "month": (),
}  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Filters:
    """Empty tuples mean "all". `origins` are graph IRIs; months are `YYYY-MM`, both ends included."""

    kinds: tuple[str, ...] = ()
    departements: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    month_from: str | None = None
    month_to: str | None = None


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    #: distinct live records under the filters (a theme table counts a record once per theme)
    records: int


@dataclass
class Graph:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[dict[str, Any]] = field(default_factory=list)


# --- counts ------------------------------------------------------------------------------------


def _month(conn: AsyncConnection) -> ColumnElement[Any]:
    """`YYYY-MM` of `published`, in UTC (SQLite holds UTC text; PostgreSQL a timestamptz)."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", records.c.published), "YYYY-MM")
    return func.substr(records.c.published, 1, 7)


def _month_start(month: str, *, after: bool = False) -> datetime:
    year, number = int(month[:4]), int(month[5:7])
    if after:
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return datetime(year, number, 1, tzinfo=UTC)


def _where(filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [records.c.deleted_at.is_(None), records.c.origin.notin_(blocked_graphs())]
    if filters.kinds:
        conditions.append(records.c.kind.in_(filters.kinds))
    if filters.departements:
        conditions.append(records.c.departement.in_(filters.departements))
    if filters.origins:
        conditions.append(records.c.origin.in_(filters.origins))
    if filters.month_from:
        conditions.append(records.c.published >= _month_start(filters.month_from))
    if filters.month_to:
        conditions.append(records.c.published < _month_start(filters.month_to, after=True))
    return conditions


async def count(conn: AsyncConnection, dimensions: Sequence[str], filters: Filters,
                origin_names: Mapping[str, str]) -> Table:  # fmt: skip
    """One row per combination of the dimensions' values (`month` may be one), with its count.

    `region` is grouped as départements in SQL and folded here (a département is in one région).
    """
    sql_columns: dict[str, ColumnElement[Any]] = {
        "theme": record_themes.c.theme, "kind": records.c.kind, "commune": records.c.insee,
        "departement": records.c.departement, "region": records.c.departement, "origin": records.c.origin,
        "month": _month(conn),
    }  # fmt: skip
    grouped = list(dict.fromkeys("departement" if d == "region" else d for d in dimensions))
    selected = [sql_columns[d].label(d) for d in grouped]
    source: Any = records
    if "theme" in grouped:  # records without a theme count once, under no theme
        source = records.outerjoin(record_themes, record_themes.c.record_id == records.c.id)
    where = _where(filters)
    query = select(*selected, func.count().label("n")).select_from(source).where(*where).group_by(*selected)
    raw = [(dict(row._mapping), int(row.n)) for row in await conn.execute(query)]
    total = int((await conn.execute(select(func.count()).select_from(records).where(*where))).scalar_one())
    return fold(dimensions, raw, origin_names, total)


def fold(dimensions: Sequence[str], raw: Iterable[tuple[Mapping[str, Any], int]],
         origin_names: Mapping[str, str], total: int) -> Table:  # fmt: skip
    """The SQL groups as the table asked for: régions summed from départements, labels added,
    the biggest count first (then by values, so the order never depends on the database)."""
    sums: dict[tuple[Any, ...], int] = {}
    for values, n in raw:
        key = tuple(region_of(values["departement"]) if d == "region" else values[d] for d in dimensions)
        sums[key] = sums.get(key, 0) + n
    columns = tuple(c for d in dimensions for c in (d, *LABELS[d])) + ("count",)
    rows = []
    for key, n in sorted(sums.items(), key=lambda kv: (-kv[1], tuple("" if v is None else str(v) for v in kv[0]))):
        row: dict[str, Any] = {}
        for d, value in zip(dimensions, key, strict=True):
            row[d] = value
            row.update(labels(d, value, origin_names))
        row["count"] = n
        rows.append(row)
    return Table(columns, rows, total)


@cache
def _regions_by_departement() -> Mapping[str, str]:
    return {c.departement: c.region for c in communes().values()}


def region_of(departement: str | None) -> str | None:
    return _regions_by_departement().get(departement) if departement else None


def labels(dimension: str, value: Any, origin_names: Mapping[str, str]) -> dict[str, Any]:
    """The label columns of one dimension's value (None when the value is missing or unknown)."""
    if dimension == "theme":
        concept = schemes.concepts().get(value) if value else None
        return {"theme_notation": concept.notation if concept else None,
                "theme_label": concept.label("fr") if concept else None}  # fmt: skip
    if dimension == "kind":
        return {"kind_label": KIND_LABELS.get(value)}
    if dimension == "commune":
        place = commune(value) if value else None
        return {"commune_name": place.name if place else None}
    if dimension == "departement":
        return {"departement_name": DEPARTEMENTS.get(value) if value else None}
    if dimension == "region":
        return {"region_name": REGIONS.get(value) if value else None}
    if dimension == "origin":
        return {"origin_name": origin_names.get(value)}
    return {}


async def origin_names(conn: AsyncConnection, local_graph: str, local_name: str) -> dict[str, str]:
    rows = (await conn.execute(select(origins.c.graph, origins.c.name).where(origins.c.policy != "blocked"))).all()
    return {row.graph: row.name or row.graph for row in rows} | {local_graph: local_name}


# --- partnerships ------------------------------------------------------------------------------

#: Declared partnerships, and each event's organisers (its `organizers` and its `attributedTo`).
PARTNERS_QUERY = f"""SELECT ?g ?type ?s ?o WHERE {{
  {{ GRAPH ?g {{ ?s <{PAIR}partnerOf> ?o }} BIND("partnerOf" AS ?type) }}
  UNION
  {{ GRAPH ?g {{ ?s a <{AS}Event> .
      {{ ?s <{FEP_8A8E}organizers>/<{AS}items> ?o }} UNION {{ ?s <{AS}attributedTo> ?o }} }}
    BIND("organizer" AS ?type) }}
}}"""


def partner_links(rows: Iterable[Mapping[str, str]], graphs: Sequence[str] = (), excluded: Sequence[str] = ()
                  ) -> list[dict[str, Any]]:  # fmt: skip
    """Undirected edges from the query's rows: `partnerOf` (declared by either side, `weight` the
    number of declarations) and `coOrganized` (`weight` the number of events organised together)."""
    weights: dict[tuple[str, str, str], int] = {}
    organisers: dict[str, set[str]] = {}
    for row in rows:
        if (graphs and row["g"] not in graphs) or row["g"] in excluded:
            continue
        if row["type"] == "partnerOf":
            if row["s"] != row["o"]:
                a, b = sorted((row["s"], row["o"]))
                weights[(a, b, "partnerOf")] = weights.get((a, b, "partnerOf"), 0) + 1
        else:
            organisers.setdefault(row["s"], set()).add(row["o"])
    for who in organisers.values():
        ordered = sorted(who)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1:]:
                weights[(a, b, "coOrganized")] = weights.get((a, b, "coOrganized"), 0) + 1
    return [{"source": a, "target": b, "type": t, "weight": n} for (a, b, t), n in sorted(weights.items())]


async def describe_nodes(conn: AsyncConnection, iris: Sequence[str]) -> dict[str, dict[str, str]]:
    """id, label, kind, departement and origin of each IRI; IRIs the node does not hold keep their IRI."""
    found: dict[str, dict[str, str]] = {}
    unique = sorted(set(iris))
    for start in range(0, len(unique), 500):
        query = select(records.c.iri, records.c.name, records.c.kind, records.c.departement, records.c.origin).where(
            records.c.iri.in_(unique[start:start + 500]), records.c.deleted_at.is_(None))  # fmt: skip
        for row in await conn.execute(query):
            found[row.iri] = {"id": row.iri, "label": row.name, "kind": row.kind,
                              "departement": row.departement or "", "origin": row.origin}  # fmt: skip
    return {iri: found.get(iri) or {"id": iri, "label": iri, "kind": "", "departement": "", "origin": ""}
            for iri in unique}  # fmt: skip


async def partnerships(conn: AsyncConnection, filters: Filters, select_rows: Any) -> Graph:
    """The graph of links; `select_rows(query)` runs the SPARQL SELECT off the event loop."""
    blocked = [r.graph for r in await conn.execute(blocked_graphs())]
    edges = partner_links(await select_rows(PARTNERS_QUERY), filters.origins, blocked)
    nodes = await describe_nodes(conn, [e[k] for e in edges for k in ("source", "target")])
    if filters.departements:
        wanted = set(filters.departements)
        edges = [e for e in edges if {nodes[e["source"]]["departement"], nodes[e["target"]]["departement"]} & wanted]
        kept = {e[k] for e in edges for k in ("source", "target")}
        nodes = {iri: n for iri, n in nodes.items() if iri in kept}
    return Graph(nodes, edges)


# --- renderings --------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A leading quote keeps a spreadsheet from running a remote record's name as a formula.
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_bytes(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """RFC 4180 (CRLF), UTF-8, the header then the rows, columns in the given order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue().encode("utf-8")


EDGE_COLUMNS = ("source", "source_label", "target", "target_label", "type", "weight")
NODE_KEYS = ("label", "kind", "departement", "origin")


def edge_rows(graph: Graph) -> list[dict[str, Any]]:
    return [{**e, "source_label": graph.nodes[e["source"]]["label"], "target_label": graph.nodes[e["target"]]["label"]}
            for e in graph.edges]  # fmt: skip


def graph_json(graph: Graph) -> dict[str, Any]:
    return {"nodes": [graph.nodes[k] for k in sorted(graph.nodes)], "edges": graph.edges}


def graphml(graph: Graph) -> bytes:
    """GraphML 1.0, undirected, node and edge attributes declared as keys."""
    ns = "http://graphml.graphdrawing.org/xmlns"
    root = ET.Element("graphml", {"xmlns": ns})
    for name in NODE_KEYS:
        ET.SubElement(root, "key", {"id": name, "for": "node", "attr.name": name, "attr.type": "string"})
    ET.SubElement(root, "key", {"id": "type", "for": "edge", "attr.name": "type", "attr.type": "string"})
    ET.SubElement(root, "key", {"id": "weight", "for": "edge", "attr.name": "weight", "attr.type": "int"})
    body = ET.SubElement(root, "graph", {"id": "partnerships", "edgedefault": "undirected"})
    for iri in sorted(graph.nodes):
        node = ET.SubElement(body, "node", {"id": iri})
        for name in NODE_KEYS:
            ET.SubElement(node, "data", {"key": name}).text = _XML_INVALID.sub("", graph.nodes[iri][name])
    for i, edge in enumerate(graph.edges):
        element = ET.SubElement(body, "edge", {"id": f"e{i}", "source": edge["source"], "target": edge["target"]})
        ET.SubElement(element, "data", {"key": "type"}).text = edge["type"]
        ET.SubElement(element, "data", {"key": "weight"}).text = str(edge["weight"])
    body_bytes: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body_bytes

