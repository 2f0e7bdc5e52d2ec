"""The aiohttp application: create_app(config) wires storage, index, workers and routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import jinja2
from aiohttp import web

from node.config import Config
from node.convert.common import now_utc
from node.errors import NodeError, ValidationFailed
from node.graph import SCHEMES_GRAPH, open_index
from node.keys import CONFIG, DIRECTORY, ENGINE, INDEX, INDEXER, TASKS, TEMPLATES
from node.routes import api, openapi, publish
from node.routes import vocab as vocab_routes
from node.service import Directory
from node.storage import repo
from node.storage.db import make_engine, schema_state
from node.workers.indexer import Indexer

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: object) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(),
                        content_type=PROBLEM, charset="utf-8")  # fmt: skip


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as application/problem+json with a precise detail."""
    try:
        return await handler(request)
    except ValidationFailed as exc:
        errors = [{"pointer": e.pointer, "detail": e.detail} for e in exc.errors]
        return problem(exc.status, exc.title, exc.detail, errors=errors)
    except NodeError as exc:
        return problem(exc.status, exc.title, exc.detail)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem(413, "Request body too large", exc.text or "the body is larger than the node accepts")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.reason if exc.status != 404 else f"nothing at {request.path}"
        response = problem(exc.status, exc.reason, detail)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    engine = make_engine(config.effective_database_url)
    current, head = await schema_state(engine)
    if current != head:
        await engine.dispose()
        raise NodeError(f"database schema is at {current}, the code needs {head}: run `oscartes init`")
    index = await asyncio.to_thread(open_index, config.sparql_store, config.data_dir, config.sparql_update)
    async with engine.begin() as conn:  # through the work rows: a store that is down gets it later
        await repo.enqueue_index(conn, "schemes", SCHEMES_GRAPH, SCHEMES_GRAPH, now_utc())
    indexer = Indexer(engine, index, config.index_batch)
    app[ENGINE], app[INDEX], app[INDEXER] = engine, index, indexer
    app[DIRECTORY] = Directory(config, engine, indexer)
    await indexer.run_once()  # replay what a crash or a CLI command left pending
    task = asyncio.create_task(indexer.run_forever())
    app[TASKS] = [task]
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.to_thread(index.close)
    await engine.dispose()


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[problems], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    app.cleanup_ctx.append(_storage)
    publish.add_routes(app)
    vocab_routes.add_routes(app)
    api.add_routes(app)
    openapi.add_routes(app)
    return app
