"""Oxigraph's JSON-LD reading gives the same records as pyld's, on the demo territory and on
synthetic initiatives with every field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from node.cli import demo_documents
from node.convert.parse import ParseContext, node_loader, record_from_jsonld, record_from_node
from node.errors import ValidationFailed
from node.records import COLLECTIONS
from vocab import fastld

BASE = "https://demo.example"
CTX = ParseContext(BASE, f"{BASE}/ns/context.jsonld", "https://creativecommons.org/licenses/by-sa/4.0/",
                   datetime(2026, 11, 23, tzinfo=UTC))  # fmt: skip
CONTEXT = ["https://www.w3.org/ns/activitystreams", CTX.context_url]


def demo_items() -> list[tuple[str, dict[str, object]]]:
    items = []
    for entry in demo_documents():
        doc = dict(entry["doc"])
        doc["id"] = f"{BASE}/{doc['id']}"
        for key in ("attributedTo", "organizer"):
            if isinstance(doc.get(key), str) and not doc[key].startswith("http"):
                doc[key] = f"{BASE}/{doc[key]}"
        items.append((COLLECTIONS[entry["collection"]], doc))
    return items


def test_both_readings_give_the_same_records() -> None:
    items = demo_items()
    nodes = fastld.expand_page([d for _, d in items], CONTEXT, [str(d["id"]) for _, d in items],
                               loader=node_loader(CTX.context_url), base=BASE + "/")  # fmt: skip
    assert len(nodes) == len(items)
    compared = 0
    for kind, doc in items:
        try:
            slow = record_from_jsonld({"@context": CONTEXT, **doc}, kind, CTX).record  # type: ignore[arg-type]
        except ValidationFailed:  # a demo document naming records of the demo node itself: skipped
            continue
        fast = record_from_node(nodes[str(doc["id"])], kind, CTX).record  # type: ignore[arg-type]
        assert fast == slow, doc["id"]
        compared += 1
    assert compared > 50


def test_what_it_cannot_read_goes_back_to_pyld() -> None:
    loader = node_loader(CTX.context_url)
    with pytest.raises(fastld.FastPathUnavailable):
        fastld.expand_page([{"id": f"{BASE}/x"}], ["https://unknown.example/ctx"], [f"{BASE}/x"], loader=loader,
                           base=BASE + "/")  # fmt: skip
    with pytest.raises(fastld.FastPathUnavailable):
        fastld.expand_page([{"id": f"{BASE}/x", "name": {"@value": 1, "@type": "@json"}, "@type": 3}],
                           CONTEXT, [f"{BASE}/x"], loader=loader, base=BASE + "/")  # fmt: skip
