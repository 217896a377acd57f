"""The baseline: a bare aiohttp app answering ``GET /hello`` with a small JSON body.

The benchmark compares Qatysu against this app on the same machine, with the same load tool, in
the same run, so it runs on the same event loop as the server (uvloop) with the access log off.

    python -m loadtests.hello --port 18081
"""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from loadtests.eventloop import use_uvloop

HELLO_BODY = b'{"hello":"world"}'


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO_BODY, content_type="application/json")


def create_hello_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/hello", hello)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A bare aiohttp JSON hello, the baseline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args(argv)
    # On uvloop like the server, so that the baseline is not handicapped.
    if not use_uvloop():  # pragma: no cover - uvloop is a dependency off Windows
        print("uvloop is missing: the baseline runs on asyncio's own loop", file=sys.stderr)
    web.run_app(
        create_hello_app(),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda _: print(f"hello serving on http://{args.host}:{args.port}", flush=True),
        backlog=1024,  # the same listen backlog as core/host/server.py
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
