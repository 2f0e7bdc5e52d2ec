"""`oscartes follow | unfollow | followers | origins`: node-to-node federation from the shell.
Each writes durable rows and tries to deliver at once; a running server sends what is left."""

from __future__ import annotations

import argparse
import json
from typing import Any

from node.config import Config
from node.errors import BadRequest


def add_commands(sub: Any, common: Any) -> None:
    p = sub.add_parser("follow", help="follow another node: copy its directory, then keep it up to date")
    common(p)
    p.add_argument("url", help="the node's URL (its actor is found through NodeInfo) or its actor's URL")
    p = sub.add_parser("unfollow", help="stop following a node; its copy stays as a frozen snapshot")
    common(p)
    p.add_argument("url")
    p.add_argument("--purge", action="store_true", help="also delete the copy of its directory")
    p = sub.add_parser("followers", help="who follows this node; approve or reject a pending node")
    common(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--approve", metavar="URL", help="accept this pending follower (its actor URL)")
    group.add_argument("--reject", metavar="URL", help="refuse this pending follower")
    p = sub.add_parser("origins", help="the other nodes whose records this node holds; set their policy")
    common(p)
    p.add_argument("url", nargs="?", help="an origin (its URL, actor or dataset) to change")
    p.add_argument("--policy", choices=("trusted", "limited", "blocked"),
                   help="limited: shown, not relayed; blocked: purged and refused")  # fmt: skip
    relay = p.add_mutually_exclusive_group()
    relay.add_argument("--relay", dest="relay", action="store_true", default=None,
                       help="pass what this origin says on to the nodes following this one")  # fmt: skip
    relay.add_argument("--no-relay", dest="relay", action="store_false")


async def run(config: Config, args: argparse.Namespace) -> str:
    from node import actors, federate, origins, social
    from node.app import user_agent
    from node.runtime import outside
    from node.storage.db import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        if args.command == "origins":
            if args.url is None:
                async with engine.connect() as conn:
                    return json.dumps(await origins.listing(conn), indent=2)
            if args.policy is None and args.relay is None:
                raise BadRequest("give --policy and/or --relay/--no-relay")
            row = await origins.set_policy(config, engine, args.url, args.policy, args.relay)
            return json.dumps(origins.describe(row))
        async with outside(config, engine, user_agent(config)) as out:
            if args.command == "followers" and not (args.approve or args.reject):
                node = actors.node_actor_iri(config)
                async with engine.connect() as conn:
                    shown = {s: await federate.followers(conn, node, s) for s in ("accepted", "pending")}
                return json.dumps(shown, indent=2)
            if args.command == "followers":
                done = await social.decide(config, engine, out.remote, actors.NODE_USERNAME,
                                           args.approve or args.reject, accept=bool(args.approve))  # fmt: skip
                result = f"{'accepted' if args.approve else 'rejected'} ({done})"
            elif args.command == "follow":
                row = await origins.follow(config, engine, out.client, out.remote, args.url)
                result = f"following {row.actor}: its directory {row.graph} is copied once it accepts"
            else:
                row = await origins.unfollow(config, engine, out.client, out.remote, args.url, args.purge)
                result = f"unfollowed {row.actor}: {'copy purged' if args.purge else 'copy kept, frozen'}"
            sent = await out.deliverer.run_once()
            return f"{result}; {sent} delivery(ies) made now, the rest by the running server"
    finally:
        await engine.dispose()
