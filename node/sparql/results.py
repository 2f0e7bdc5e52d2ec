"""SPARQL results and graphs in each format the endpoint serves, and choosing one (the
`format` parameter or Accept). Pure functions over pyoxigraph terms."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

from node.errors import NotAcceptable
from node.negotiate import best

Kind = Literal["select", "ask", "graph"]
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

#: name -> media types (the first is the one answered), for each kind of query.
RESULT_MEDIA: dict[str, tuple[str, ...]] = {
    "json": ("application/sparql-results+json", "application/json"),
    "xml": ("application/sparql-results+xml", "application/xml", "text/xml"),
    "csv": ("text/csv",),
    "tsv": ("text/tab-separated-values",),
    "html": ("text/html", "application/xhtml+xml"),
}
GRAPH_MEDIA: dict[str, tuple[str, ...]] = {
    "turtle": ("text/turtle", "application/x-turtle"),
    "ntriples": ("application/n-triples", "text/plain"),
    "nquads": ("application/n-quads",),
    "jsonld": ("application/ld+json", "application/json"),
    "rdfxml": ("application/rdf+xml", "application/xml", "text/xml"),
    "html": ("text/html", "application/xhtml+xml"),
}
_OFFERED: dict[Kind, tuple[str, ...]] = {
    "select": ("json", "xml", "csv", "tsv", "html"),
    "ask": ("json", "xml", "html"),
    "graph": ("turtle", "ntriples", "nquads", "jsonld", "rdfxml", "html"),
}
#: ?format= names; clients such as SPARQLWrapper send their own (xml for RDF/XML, n3...).
FORMAT_NAMES: dict[Kind, dict[str, str]] = {
    "select": {"json": "json", "srj": "json", "xml": "xml", "srx": "xml", "csv": "csv", "tsv": "tsv",
               "html": "html"},
    "ask": {"json": "json", "srj": "json", "xml": "xml", "srx": "xml", "html": "html"},
    "graph": {"turtle": "turtle", "ttl": "turtle", "n3": "turtle", "ntriples": "ntriples", "nt": "ntriples",
              "nquads": "nquads", "nq": "nquads", "jsonld": "jsonld", "json-ld": "jsonld", "json": "jsonld",
              "rdfxml": "rdfxml", "rdf": "rdfxml", "rdf+xml": "rdfxml", "xml": "rdfxml", "html": "html"},
}  # fmt: skip
RDF_FORMATS = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES,
                "nquads": ox.RdfFormat.N_QUADS, "jsonld": ox.RdfFormat.JSON_LD,
                "rdfxml": ox.RdfFormat.RDF_XML}  # fmt: skip
PREFIXES = {
    "as": "https://www.w3.org/ns/activitystreams#", "pair": "http://virtual-assembly.org/ontologies/pair#",
    "osc": "https://w3id.org/oscartes/ns#", "vf": "https://w3id.org/valueflows/ont/vf#",
    "skos": "http://www.w3.org/2004/02/skos/core#", "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#", "geo": "http://rdf.insee.fr/def/geo#",
    "xsd": "http://www.w3.org/2001/XMLSchema#", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}  # fmt: skip


def choose_format(kind: Kind, name: str | None, accept: str | None) -> str:
    """A `format` parameter wins over Accept; no Accept, or */*, gets JSON results or Turtle."""
    if name:
        chosen = FORMAT_NAMES[kind].get(name.lower())
        if chosen is None:
            what = {"select": "a SELECT", "ask": "an ASK", "graph": "a CONSTRUCT or DESCRIBE"}[kind]
            names = ", ".join(sorted(FORMAT_NAMES[kind]))
            raise NotAcceptable(f"format={name!r} is not available for {what} query; use one of {names}")
        return chosen
    default = "turtle" if kind == "graph" else "json"
    table = GRAPH_MEDIA if kind == "graph" else RESULT_MEDIA
    offered = {f: table[f] for f in _OFFERED[kind]}
    # A wildcard never gets the query page: only an explicit text/html does.
    chosen = best(accept, offered, default, wildcards=[f for f in offered if f != "html"])
    if chosen is None:
        served = ", ".join(table[f][0] for f in offered if f != "html")
        raise NotAcceptable(f"cannot answer {accept!r} for this query; available: {served}")
    return chosen


def media_type(kind: Kind, fmt: str) -> str:
    return (GRAPH_MEDIA if kind == "graph" else RESULT_MEDIA)[fmt][0]


# ---------------------------------------------------------------- writing results

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple


def _json_term(term: Term) -> dict[str, Any]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, Any] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": {"subject": _json_term(term.subject),
                                        "predicate": _json_term(term.predicate),
                                        "object": _json_term(term.object)}}  # fmt: skip


def _xml_term(term: Term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
        return f"<literal>{escape(term.value)}</literal>"
    return (f"<triple><subject>{_xml_term(term.subject)}</subject><predicate>{_xml_term(term.predicate)}"
            f"</predicate><object>{_xml_term(term.object)}</object></triple>")  # fmt: skip


def plain(term: Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.NamedNode | ox.Literal):
        return term.value
    return str(term)


Row = tuple[Term | None, ...]


def write_solutions(fmt: str, variables: list[str], rows: list[Row]) -> bytes:
    if fmt == "json":
        bindings = [{v: _json_term(t) for v, t in zip(variables, row, strict=True) if t is not None} for row in rows]
        doc = {"head": {"vars": variables}, "results": {"bindings": bindings}}
        return json.dumps(doc, ensure_ascii=False).encode()
    if fmt == "xml":
        head = "".join(f"<variable name={quoteattr(v)}/>" for v in variables)
        results = "".join(
            "<result>" + "".join(f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>"
                                 for v, t in zip(variables, row, strict=True) if t is not None) + "</result>"
            for row in rows
        )  # fmt: skip
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                f"<head>{head}</head><results>{results}</results></sparql>\n").encode()  # fmt: skip
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(variables)
        writer.writerows([plain(t) for t in row] for row in rows)
        return buffer.getvalue().encode()
    if fmt == "tsv":  # terms in their N-Triples form, which escapes tabs and line breaks
        lines = ["\t".join(f"?{v}" for v in variables)]
        lines += ["\t".join("" if t is None else str(t) for t in row) for row in rows]
        return ("\n".join(lines) + "\n").encode()
    raise ValueError(f"no results writer for {fmt}")


def write_boolean(fmt: str, value: bool) -> bytes:
    text = "true" if value else "false"
    if fmt == "xml":
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                f"<head/><boolean>{text}</boolean></sparql>\n").encode()  # fmt: skip
    return json.dumps({"head": {}, "boolean": value}).encode()


def write_triples(fmt: str, triples: list[ox.Triple]) -> bytes:
    prefixes = PREFIXES if fmt in ("turtle", "rdfxml") else None
    return ox.serialize(triples, format=RDF_FORMATS[fmt], prefixes=prefixes) or b""
