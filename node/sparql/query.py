"""Reading a query's text before the store sees it.

Oxigraph would follow a SERVICE clause with a real HTTP request: SERVICE is refused, updates
are refused, and the graphs FROM / FROM NAMED name are collected so that a FROM naming a graph
the store does not hold is refused rather than silently empty (the endpoint never fetches graphs).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from node.sparql.errors import QueryRefused, UpdateRefused
from node.sparql.results import Kind

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
