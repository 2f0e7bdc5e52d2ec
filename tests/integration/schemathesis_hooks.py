"""Schemathesis hooks for test_openapi: each address a generated body asks the node to fetch
(`target`, `actor`) becomes one the node's SSRF guard refuses before connecting, so the run
touches no network and the node answers the documented 403."""

from __future__ import annotations

from typing import Any

import schemathesis

#: Loopback, refused by a node that is not allowed private addresses (the test node is not).
REFUSED = "http://127.0.0.1:9/actor"


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if isinstance(case.body, dict):
        for key in ("target", "actor"):
            if isinstance(case.body.get(key), str):
                case.body[key] = REFUSED
    return case
