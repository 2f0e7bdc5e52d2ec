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

from federation import signatures as sig
from node import groups as groups_module
from node import origins
from node.config import Config
from node.convert.common import now_utc
from node.errors import NodeError, NotAcceptable, ValidationFailed
from node.graph import SCHEMES_GRAPH, open_index
from node.keys import (
    BLOCKS,
    CLIENT,
    CONFIG,
    DELIVERER,
    DIRECTORY,
    ENGINE,
    INBOX_WORKER,
    INBOX_WRITER,
    INDEX,
    INDEXER,
    LIMITER,
    REMOTE,
    SYNCER,
    TASKS,
    TEMPLATES,
)
from node.negotiate import choose
from node.ratelimit import RateLimiter
from node.routes import activitypub, api, dataset, groups, nodes, openapi, publish, social, sparql
from node.routes import matches as match_routes
from node.routes import search as search_routes
from node.routes import stats as stats_routes
from node.routes import vocab as vocab_routes
from node.routes.activitypub import TooManyRequests, software_version
from node.runtime import outside
from node.service import Directory
from node.storage import repo
from node.storage.batch import GroupInsert
from node.storage.db import make_engine, schema_state
from node.storage.tables import inbox_items
from node.workers import Worker
from node.workers.inbox import InboxWorker
from node.workers.indexer import Indexer
from node.workers.planner import PlannerStatistics
from node.workers.sync import Syncer

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
    except TooManyRequests as exc:
        response = problem(exc.status, exc.title, exc.detail)
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    except NotAcceptable as exc:  # the answer depends on Accept: a cache must not give it to others
        response = problem(exc.status, exc.title, exc.detail)
        response.headers["Vary"] = "Accept"
        return response
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
        await origins.enqueue_provenance(conn, config, now_utc())
    indexer = Indexer(engine, index, config.index_batch, config=config)
    app[ENGINE], app[INDEX], app[INDEXER] = engine, index, indexer
    stack = contextlib.AsyncExitStack()
    out = await stack.enter_async_context(outside(config, engine, user_agent(config)))
    client, remote, deliverer = out.client, out.remote, out.deliverer
    inbox_worker = InboxWorker(config, engine, client, remote, deliverer.kick, indexer.kick,
                               on_record=groups_module.record_hook(config))
    syncer = Syncer(config, engine, client, remote, indexer.kick)
    inbox_worker.on_synced = syncer.kick
    app[SYNCER] = syncer
    app[CLIENT], app[REMOTE], app[DELIVERER], app[INBOX_WORKER] = client, remote, deliverer, inbox_worker
    app[LIMITER] = RateLimiter(config.inbox_rate_per_minute)
    app[BLOCKS] = deliverer.blocks
    writer = GroupInsert(engine, inbox_items, "activity_id")
    writer.start()
    app[INBOX_WRITER] = writer
    app[DIRECTORY] = Directory(config, engine, indexer, deliverer.kick)
    await indexer.run_once()  # replay what a crash or a CLI command left pending
    workers: list[Worker] = [indexer, PlannerStatistics(engine)]
    if not config.separate_workers:  # else `oscartes worker` runs them, on another core
        await deliverer.recover()
        await syncer.recover()
        workers += [deliverer, inbox_worker, syncer]
    tasks = [asyncio.create_task(w.run_forever()) for w in workers]
    app[TASKS] = tasks
    yield
    await writer.stop()
    syncer.close()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await stack.aclose()
    await asyncio.to_thread(index.close)
    await engine.dispose()


def user_agent(config: Config) -> str:
    return f"Oscartes/{software_version()} (+{config.base_url}/)"


#: Paths any fetcher may read unsigned even in authorized-fetch mode: to check our signatures
#: a server must first fetch our node actor, and discovery must stay open.
OPEN_PATHS = ("/actor", "/.well-known/", "/nodeinfo/", "/ns/", "/healthz", "/api/")


@web.middleware
async def authorized_fetch(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Mastodon's secure mode: ActivityPub representations only for signed GETs."""
    config = request.app[CONFIG]
    wants_as2 = choose(request.headers.get("Accept"), ("html", "as2", "jsonld")) in ("as2", "jsonld")
    if (config.authorized_fetch and request.method == "GET" and wants_as2
            and not request.path.startswith(OPEN_PATHS) and request.path != "/"):  # fmt: skip
        await sig.verify_request("GET", config.base_url + request.raw_path, request.headers, None,
                                 request.app[REMOTE].resolve_key)  # fmt: skip
    return await handler(request)


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[problems, authorized_fetch], client_max_size=config.max_body_bytes)
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
    activitypub.add_routes(app)
    groups.add_routes(app)
    social.add_routes(app)
    dataset.add_routes(app)
    nodes.add_routes(app)
    search_routes.add_routes(app)
    sparql.add_routes(app)
    match_routes.add_routes(app)
    stats_routes.add_routes(app)
    return app
