"""Many shared inboxes for the fan-out benchmark: one process listening on N loopback ports
(a host each), answering 202 and counting. Prints the ports as one JSON line when ready;
GET /count on the first port tells how many POSTs arrived."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

from aiohttp import web


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def serve(count: int) -> None:
    received = 0

    async def inbox(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=202)

    async def counter(request: web.Request) -> web.Response:
        return web.json_response({"received": received})

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_get("/count", counter)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(count):
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ports.append(port)
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, required=True)
    asyncio.run(serve(parser.parse_args().count))


if __name__ == "__main__":
    main()
