"""The inbox floor: a bare aiohttp handler that parses and verifies the same signed POSTs
(same verification code, key from memory) and answers 202, storing nothing."""

from __future__ import annotations

import argparse
import json

from aiohttp import web

from federation import signatures as sig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True, help="JSON file: key_id, owner, public_pem")
    args = parser.parse_args()
    with open(args.key, encoding="utf-8") as fh:
        info = json.load(fh)
    resolved = sig.ResolvedKey(info["key_id"], info["owner"], info["public_pem"])
    base = f"http://127.0.0.1:{args.port}"

    async def resolve(key_id: str, refresh: bool) -> sig.ResolvedKey:
        return resolved

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        json.loads(body)
        await sig.verify_request("POST", base + request.raw_path, request.headers, body, resolve)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_get("/", lambda request: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
