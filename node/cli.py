"""`oscartes`: init, serve, demo, token, reindex, export."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib import resources
from typing import Any

from sqlalchemy.exc import DBAPIError

from node import cli_nodes
from node.config import NODE_FILE, Config, ConfigError, load_config, write_node_file
from node.errors import NodeError, StoreBusy, ValidationFailed

log = logging.getLogger("oscartes")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="the node's data folder (env OSCARTES_DATA)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (env OSCARTES_DATABASE_URL; default SQLite in DIR)")
    parser.add_argument("--sparql-store", help="'embedded' or a SPARQL 1.1 query URL (env OSCARTES_SPARQL_STORE)")
    parser.add_argument("--allow-private-addresses", action="store_true",
                        help="fetch from and deliver to private/loopback addresses: for tests only "
                             "(env OSCARTES_ALLOW_PRIVATE_ADDRESSES=1)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oscartes", description="A territory's node of the ESS directory.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create or upgrade a node's data folder and database")
    _common(p)
    p.add_argument("--base-url", help="public URL of the node (env OSCARTES_BASE_URL)")
    p.add_argument("--name", help="the node's display name")

    p = sub.add_parser("serve", help="run the node's web server")
    _common(p)
    p.add_argument("--base-url", help="public URL of the node (env OSCARTES_BASE_URL)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)

    p = sub.add_parser("worker", help="process inboxes and deliver, beside `serve` run with "
                       "OSCARTES_SEPARATE_WORKERS=1 (another core for the busy part)")  # fmt: skip
    _common(p)

    p = sub.add_parser("demo", help="load the demo territory shipped with the package")
    _common(p)

    p = sub.add_parser("token", help="API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t = tsub.add_parser("create", help="create a token and print it (shown once)")
    _common(t)
    t.add_argument("--role", choices=("admin", "editor"), required=True)
    t.add_argument("--initiative", action="append", default=[],
                   help="IRI or slug of an initiative an editor may edit (repeatable)")  # fmt: skip
    t.add_argument("--label", default="", help="a note to recognise the token later")
    t = tsub.add_parser("list", help="list tokens (ids, roles, last use; never the secrets)")
    _common(t)
    t = tsub.add_parser("revoke", help="revoke a token by id")
    _common(t)
    t.add_argument("id", type=int, help="the token's id, from `oscartes token list`")

    p = sub.add_parser("reindex", help="rebuild the RDF index from SQL")
    _common(p)

    p = sub.add_parser("actor", help="an initiative's (or the node's) account: follow, unfollow, followers")
    asub = p.add_subparsers(dest="actor_command", required=True, metavar="ACTION")
    for name, text in (("follow", "follow an account (URL or @user@host)"), ("unfollow", "stop following it")):
        a = asub.add_parser(name, help=text)
        _common(a)
        a.add_argument("--as", dest="who", required=True, help="the initiative's slug, or 'node'")
        a.add_argument("target", help="an actor URL or @user@host")
    a = asub.add_parser("followers", help="list followers; approve or reject a pending one")
    _common(a)
    a.add_argument("--as", dest="who", required=True, help="the initiative's slug, or 'node'")
    group = a.add_mutually_exclusive_group()
    group.add_argument("--approve", metavar="ACTOR", help="accept this pending follower")
    group.add_argument("--reject", metavar="ACTOR", help="refuse this pending follower")

    cli_nodes.add_commands(sub, _common)

    p = sub.add_parser("block", help="domain blocks: no inbox traffic from them, no deliveries to them")
    bsub = p.add_subparsers(dest="block_command", required=True, metavar="ACTION")
    b = bsub.add_parser("add", help="block a domain")
    _common(b)
    b.add_argument("domain")
    b.add_argument("--reason", default="")
    b = bsub.add_parser("remove", help="unblock a domain")
    _common(b)
    b.add_argument("domain")
    b = bsub.add_parser("list", help="list blocked domains")
    _common(b)

    p = sub.add_parser("validate", help="check the node's records against the SHACL shapes")
    _common(p)

    p = sub.add_parser("export", help="write the whole directory to stdout")
    _common(p)
    p.add_argument("--format", choices=("nquads", "turtle", "csv"), required=True)
    return parser


def _config(args: argparse.Namespace) -> Config:
    config = load_config(
        args.data, base_url=getattr(args, "base_url", None), database_url=args.database_url,
        sparql_store=args.sparql_store, allow_private=args.allow_private_addresses,
    )  # fmt: skip
    if args.command != "init" and not (config.data_dir / NODE_FILE).exists():
        raise NodeError(f"{config.data_dir} is not a node's data folder: run `oscartes init --data {config.data_dir}`")
    return config


async def _init(config: Config) -> str:
    from node.actors import ensure_secret
    from node.storage.db import make_engine, migrate

    config.data_dir.mkdir(parents=True, exist_ok=True)
    write_node_file(config)
    ensure_secret(config.data_dir)
    engine = make_engine(config.effective_database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return f"node ready in {config.data_dir} at {config.base_url}"


async def _with_directory(config: Config, work: Any) -> Any:
    """Run `work(directory, indexer)`; the index is used when free, else left to the server."""
    from node.graph import open_index
    from node.service import Directory
    from node.storage.db import make_engine, schema_state
    from node.workers.indexer import Indexer

    engine = make_engine(config.effective_database_url)
    try:
        current, head = await schema_state(engine)
        if current != head:
            raise NodeError(f"the database is not initialised (schema {current}, need {head}): run `oscartes init`")
        try:
            index = open_index(config.sparql_store, config.data_dir, config.sparql_update)
        except StoreBusy:
            index = None
        indexer = Indexer(engine, index, config=config) if index is not None else None
        try:
            return await work(Directory(config, engine, indexer), indexer)
        finally:
            if index is not None:
                index.close()
    finally:
        await engine.dispose()


def demo_documents() -> list[dict[str, Any]]:
    text = resources.files("node").joinpath("demo/territory.jsonld").read_text(encoding="utf-8")
    data = json.loads(text)
    records: list[dict[str, Any]] = data["records"]
    return records


async def _demo(config: Config) -> str:
    from node.auth import Principal
    from node.records import COLLECTIONS
    from node.storage import repo

    admin = Principal(0, "admin", frozenset())

    async def work(directory: Any, indexer: Any) -> str:
        created = skipped = 0
        for n, item in enumerate(demo_documents(), 1):
            kind = COLLECTIONS[item["collection"]]
            doc = {"@context": ["https://www.w3.org/ns/activitystreams", config.context_url], **item["doc"]}
            iri = f"{config.base_url}/{doc['id']}" if "id" in doc else ""
            async with directory.engine.connect() as conn:
                if iri and await repo.get(conn, iri) is not None:
                    skipped += 1
                    continue
            try:
                await directory.create(kind, doc, admin, fanout=False)  # an import floods no one
            except ValidationFailed as exc:
                raise NodeError(f"demo record {n} ({doc.get('id')}): {exc.detail}") from exc
            created += 1
        note = "" if indexer else " (the RDF store is busy: the running server indexes them)"
        return f"demo territory: {created} records created, {skipped} already there{note}"

    result: str = await _with_directory(config, work)
    return result


async def _token(config: Config, role: str, initiatives: list[str], label: str) -> str:
    from node.auth import create_token
    from node.storage import repo
    from node.storage.db import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        async with engine.begin() as conn:
            iris = []
            for ref in initiatives:
                iri = ref if "/" in ref else f"{config.base_url}/initiatives/{ref}"
                if await repo.get(conn, iri) is None:
                    raise NodeError(f"no initiative {iri} on this node")
                iris.append(iri)
            if role == "editor" and not iris:
                raise NodeError("an editor token needs at least one --initiative")
            return await create_token(conn, role, iris, label)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def _token_admin(config: Config, action: str, token_id: int) -> str:
    from node.auth import list_tokens, revoke_token
    from node.storage.db import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        async with engine.begin() as conn:
            if action == "list":
                return "\n".join(json.dumps(t, ensure_ascii=False) for t in await list_tokens(conn))
            if not await revoke_token(conn, token_id):
                raise NodeError(f"no token with id {token_id}")
            return f"token {token_id} revoked"
    finally:
        await engine.dispose()


async def _reindex(config: Config) -> str:
    from node.convert.common import now_utc
    from node.storage import repo

    async def work(directory: Any, indexer: Any) -> str:
        from sqlalchemy import select

        from node.origins import enqueue_provenance
        from node.storage.tables import origins

        async with directory.engine.begin() as conn:
            held = select(origins.c.graph).where(origins.c.policy != "blocked")
            graphs = [config.graph_iri, *(row.graph for row in await conn.execute(held))]
            for graph in graphs:
                await repo.enqueue_index(conn, "reindex", graph, graph, now_utc())
            await enqueue_provenance(conn, config, now_utc())
        if indexer is None:
            return "the RDF store is in use by the running server: reindex queued, it will run it"
        await indexer.run_once()
        return f"reindexed {len(graphs)} graph(s): {', '.join(graphs)}"

    result: str = await _with_directory(config, work)
    return result


async def _validate(config: Config) -> tuple[bool, str]:
    """Validate the index when it is free, else the same triples read from SQL."""
    from node.graph import EmbeddedIndex, open_index
    from node.storage import repo
    from node.storage.db import make_engine
    from node.validate import store_from_ntriples, validate_graph

    index = None
    with contextlib.suppress(StoreBusy):  # then read the same triples from SQL
        index = open_index(config.sparql_store, config.data_dir, config.sparql_update)
    try:
        if isinstance(index, EmbeddedIndex):
            result = await asyncio.to_thread(validate_graph, index.store, config.graph_iri)
        else:
            engine = make_engine(config.effective_database_url)
            async with engine.connect() as conn:
                chunks = [s.ntriples async for s, _ in repo.all_live(conn, origin=config.graph_iri)]
            await engine.dispose()
            store = await asyncio.to_thread(store_from_ntriples, chunks, config.graph_iri)
            result = await asyncio.to_thread(validate_graph, store, config.graph_iri)
    finally:
        if index is not None:
            index.close()
    if result.conforms:
        return True, f"{config.graph_iri}: every record conforms to the shapes"
    return False, result.text


async def _actor(config: Config, args: argparse.Namespace) -> str:
    """Writes the Follow/Undo/Accept as durable rows and tries to deliver at once; a running
    server's worker delivers what could not go yet."""
    from node import social
    from node.app import user_agent
    from node.runtime import outside
    from node.storage.db import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        async with outside(config, engine, user_agent(config)) as out:
            if args.actor_command == "followers" and not (args.approve or args.reject):
                from node import federate

                who = social.local_actor_iri(config, args.who)
                async with engine.connect() as conn:
                    accepted = await federate.followers(conn, who)
                    pending = await federate.followers(conn, who, "pending")
                return json.dumps({"accepted": accepted, "pending": pending}, indent=2)
            if args.actor_command == "followers":
                activity = await social.decide(config, engine, out.remote, args.who, args.approve or args.reject,
                                               accept=bool(args.approve))  # fmt: skip
            else:
                act = social.follow if args.actor_command == "follow" else social.unfollow
                activity = await act(config, engine, out.client, out.remote, args.who, args.target)
            sent = await out.deliverer.run_once()
            return f"{activity} ({'sent' if sent else 'queued: the server will deliver it'})"
    finally:
        await engine.dispose()


async def _block(config: Config, args: argparse.Namespace) -> str:
    from node.blocks import list_blocks, set_block
    from node.storage.db import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        async with engine.begin() as conn:
            if args.block_command == "list":
                return "\n".join(f"{r.domain}\t{r.reason}" for r in await list_blocks(conn))
            blocked = args.block_command == "add"
            domain = await set_block(conn, args.domain, blocked=blocked, reason=getattr(args, "reason", ""))
            return f"{domain} {'blocked' if blocked else 'unblocked'}"
    finally:
        await engine.dispose()


async def _worker(config: Config) -> None:
    """Inbox processing and delivery in their own process; they poll, as nothing can kick them."""
    from node.app import user_agent
    from node.groups import record_hook
    from node.runtime import outside
    from node.storage.db import make_engine
    from node.workers.inbox import InboxWorker
    from node.workers.sync import Syncer

    engine = make_engine(config.effective_database_url)
    try:
        async with outside(config, engine, user_agent(config)) as out:
            inbox = InboxWorker(config, engine, out.client, out.remote, out.deliverer.kick,
                                on_record=record_hook(config))
            syncer = Syncer(config, engine, out.client, out.remote)
            inbox.on_synced = syncer.kick
            inbox.poll_seconds = out.deliverer.poll_seconds = 0.2
            await out.deliverer.recover()
            await syncer.recover()
            log.info("worker running: inbox processing, delivery and copies of other nodes for %s", config.base_url)
            try:
                await asyncio.gather(inbox.run_forever(), out.deliverer.run_forever(), syncer.run_forever())
            finally:
                syncer.close()
    finally:
        await engine.dispose()


async def _export(config: Config, fmt: str) -> None:
    from node.exporter import export
    from node.storage.db import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        await export(engine, fmt, sys.stdout.buffer)
    finally:
        await engine.dispose()


def _serve(config: Config, host: str, port: int) -> None:
    from aiohttp import web

    from node.app import create_app

    asyncio.run(_check_schema(config))
    web.run_app(create_app(config), host=host, port=port, print=lambda m: log.info("%s", m))


async def _check_schema(config: Config) -> None:
    from node.storage.db import make_engine, schema_state

    engine = make_engine(config.effective_database_url)
    try:
        current, head = await schema_state(engine)
    finally:
        await engine.dispose()
    if current != head:
        raise NodeError(f"the database schema is at {current}, this version needs {head}: run `oscartes init`")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # A line per request costs a quarter of a cached GET: off unless asked for.
    if os.environ.get("OSCARTES_ACCESS_LOG", "") not in ("1", "true", "yes"):
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
        if args.command == "init":
            if args.name:
                config = config.with_(node_name=args.name)
            print(asyncio.run(_init(config)))
        elif args.command == "serve":
            _serve(config, args.host, args.port)
        elif args.command == "worker":
            asyncio.run(_worker(config))
        elif args.command == "demo":
            print(asyncio.run(_demo(config)))
        elif args.command == "token" and args.token_command == "create":  # noqa: S105 - a subcommand name
            print(asyncio.run(_token(config, args.role, args.initiative, args.label)))
        elif args.command == "token":
            print(asyncio.run(_token_admin(config, args.token_command, getattr(args, "id", 0))))
        elif args.command == "reindex":
            print(asyncio.run(_reindex(config)))
        elif args.command == "actor":
            print(asyncio.run(_actor(config, args)))
        elif args.command == "block":
            print(asyncio.run(_block(config, args)))
        elif args.command in ("follow", "unfollow", "followers", "origins"):
            print(asyncio.run(cli_nodes.run(config, args)))
        elif args.command == "validate":
            ok, report = asyncio.run(_validate(config))
            print(report)
            return 0 if ok else 1
        elif args.command == "export":
            asyncio.run(_export(config, args.format))
    except ConfigError as exc:
        print(f"oscartes: configuration: {exc}", file=sys.stderr)
        return 2
    except NodeError as exc:
        print(f"oscartes: {exc.detail}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        print(f"oscartes: database error: {exc.orig}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
