"""The OpenAPI description matches the routes: schemathesis drives the running node with it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from node.routes.openapi import openapi_document
from tests import samples
from tests.integration.conftest import RunningNode

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: A route parameter that is a plain list of words (`{action:follow|unfollow}`): the document
#: writes one path per word.
WORDS = re.compile(r"\(\?P<(\w+)>([\w|.-]+)\)")


def test_every_route_is_described() -> None:
    from aiohttp import web

    from node.app import create_app
    from node.config import Config

    app: web.Application = create_app(Config(data_dir=Path("/nonexistent")))
    described = set(openapi_document("http://x")["paths"])
    routed = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    routed = {p.replace("{collection}", "{c}") for p in routed}
    expanded = set()
    for path in described:
        for collection in ("initiatives", "events", "needs", "offers", "resources", "places"):
            path = path.replace(f"/{collection}", "/{c}")
        expanded.add(path)
    assert {"/api/{c}", "/api/{c}/{slug}", "/{c}", "/{c}/{slug}", "/ns/context.jsonld"} <= expanded
    assert {"/api/{c}", "/api/{c}/{slug}", "/{c}", "/{c}/{slug}"} <= routed


def routed_api_operations() -> set[tuple[str, str]]:
    """(method, path) of every /api/ route of a real app, as an OpenAPI document names them."""
    from node.app import create_app
    from node.config import Config

    app = create_app(Config(data_dir=Path("/nonexistent")))
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        if not isinstance(template, str) or not template.startswith("/api/"):
            continue
        paths = [template]
        pattern = info.get("pattern")
        for name, words in WORDS.findall(pattern.pattern if isinstance(pattern, re.Pattern) else ""):
            paths = [p.replace(f"{{{name}}}", word) for p in paths for word in words.split("|")]
        found |= {(route.method.lower(), p) for p in paths}
    # aiohttp answers HEAD wherever it answers GET: the same operation, not one to describe twice.
    return {(m, p) for m, p in found if m != "head" or ("get", p) not in found}


def test_every_api_operation_is_documented_and_routed() -> None:
    routed = routed_api_operations()
    documented = {(method, path) for path, item in openapi_document("http://x")["paths"].items()
                  if path.startswith("/api/") for method in item if method in METHODS}  # fmt: skip
    assert ("get", "/api/initiatives/{slug}") in routed, "the walk reads the router"
    assert sorted(routed - documented) == [], "routes the OpenAPI document leaves out"
    assert sorted(documented - routed) == [], "documented operations that no route answers"


async def test_schemathesis_against_the_running_node(node: RunningNode) -> None:
    binary = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not shutil.which(binary):
        pytest.skip("schemathesis (test extras) is not installed")
    await node.create("initiatives", samples.initiative())
    await node.create("events", samples.event())
    hooks = {"SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("schemathesis_hooks.py"))}
    process = await asyncio.create_subprocess_exec(
        binary, "run", f"{node.base}/api/openapi.json", "--checks", CHECKS,
        "--header", f"Authorization: Bearer {node.admin}", "--max-examples", "15",
        "--generation-deterministic", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=os.environ | hooks,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    methods = {"get", "post", "put", "patch", "delete"}
    # Schemathesis leaves out the path it loaded the document from.
    operations = sum(1 for path, item in openapi_document(node.base)["paths"].items()
                     if path != "/api/openapi.json" for m in item if m in methods)  # fmt: skip
    assert " generated, " in text and f"Tested: {operations}" in text, text[-3000:]
