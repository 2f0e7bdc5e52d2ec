"""The OpenAPI description matches the routes: schemathesis drives the running node with it."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from node.routes.openapi import openapi_document
from tests import samples
from tests.integration.conftest import RunningNode

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


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


async def test_schemathesis_against_the_running_node(node: RunningNode) -> None:
    binary = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not shutil.which(binary):
        pytest.skip("schemathesis (test extras) is not installed")
    await node.create("initiatives", samples.initiative())
    await node.create("events", samples.event())
    process = await asyncio.create_subprocess_exec(
        binary, "run", f"{node.base}/api/openapi.json", "--checks", CHECKS,
        "--header", f"Authorization: Bearer {node.admin}", "--max-examples", "15",
        "--generation-deterministic", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    methods = {"get", "post", "put", "patch", "delete"}
    operations = sum(1 for item in openapi_document(node.base)["paths"].values() for m in item if m in methods)
    assert " generated, " in text and f"Tested: {operations}" in text, text[-3000:]
