"""One IRI per term in expanded JSON-LD from other servers, before anything reads it.

Servers spell the same term differently: Mastodon and Mobilizon (and this node's own AS2
documents) write schema.org as `http://schema.org#value`, schema.org's context gives
`http://schema.org/value`, some write `https://`. And a document may state types both under
`@type` and as an `rdf:type` property (this node's AS2 documents keep one ActivityStreams type
in `type`, the others under `rdf:type`): both are the same RDF. Readers look up one IRI each,
so the node folds the spellings here. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from vocab import SCHEMA

RDF_TYPE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#: Other spellings of schema.org's namespace, folded into `http://schema.org/` (the one
#: schema.org's own context gives, and the one the node stores and queries).
SCHEMA_SPELLINGS: Final = ("http://schema.org#", "https://schema.org/", "https://schema.org#")


def fold_schema(iri: str) -> str:
    """`http://schema.org#value`, `https://schema.org/value`... -> `http://schema.org/value`."""
    for spelling in SCHEMA_SPELLINGS:
        if iri.startswith(spelling):
            return SCHEMA + iri[len(spelling) :]
    return iri


def normalise(node: Mapping[str, Any]) -> dict[str, Any]:
    """An expanded node and everything it embeds, with schema.org's namespace folded in
    predicates and types, and `rdf:type` properties merged into `@type`. Values (literals,
    `@id` references) are left as they are: a web page under https://schema.org/ stays one."""
    out: dict[str, Any] = {}
    types: list[str] = []
    for key, values in node.items():
        if key == "@type":
            types += [fold_schema(t) for t in (values if isinstance(values, list) else [values])]
        elif key == RDF_TYPE:
            types += [fold_schema(v["@id"]) for v in values if isinstance(v, Mapping) and "@id" in v]
        elif key.startswith("@"):
            out[key] = _value(values) if key in ("@list", "@set", "@graph") else values
        else:
            folded = fold_schema(key)
            out[folded] = out.get(folded, []) + _value(values)
    if types:
        out["@type"] = list(dict.fromkeys(types))
    return out


def _value(values: Any) -> Any:
    if isinstance(values, list):
        return [_value(v) for v in values]
    if isinstance(values, Mapping) and "@value" not in values:
        return normalise(values)
    return values
