"""``/docs``: the API's documentation as Swagger UI, served from a Python package, never a CDN.

The page reads ``/openapi.json`` from the same server, so what it shows is what the server
enforces, and "Try it out" calls this server. The assets (Swagger UI 5, which reads OpenAPI
3.1) come from the ``swagger-ui-py`` package's static files, read once and kept in memory, with
a gzip copy for the clients that accept it. The page's Content-Security-Policy allows scripts
and styles from this origin only, so nothing is fetched from anywhere else.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from aiohttp import web

from core.http.compression import accepts_gzip
from core.plugin_host.routing import Document, Routes, sheddable

DOCS_POLICY = sheddable("docs", rate=10.0, burst=50)
CACHE_CONTROL = "public, max-age=3600"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'"
)
ASSETS = "/docs/assets"

# The Swagger UI files the page loads, and their media types.
_PACKAGED = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "index.css": "text/css",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# BaseLayout shows the document without the standalone preset's URL bar: this server's API only.
_INITIALIZER = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Qatysu API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="stylesheet" href="{ASSETS}/index.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/qatysu-docs.js"></script>
</body>
</html>
"""


@dataclass(frozen=True, slots=True)
class Asset:
    media_type: str
    body: bytes
    gzipped: bytes | None


@cache
def asset(name: str) -> Asset | None:
    """A documentation asset by name, read from its package on first use; None for others."""
    if name == "qatysu-docs.js":
        return Asset("text/javascript", _INITIALIZER, None)
    media_type = _PACKAGED.get(name)
    if media_type is None:
        return None
    body = (files("swagger_ui") / "static" / name).read_bytes()
    compressible = not media_type.startswith("image/")
    return Asset(media_type, body, gzip.compress(body, 6) if compressible else None)


routes = Routes(tags=("documentation",))


@routes.get(
    "/docs",
    name="docs.page",
    summary="This API's documentation, in Swagger UI",
    policy=DOCS_POLICY,
    responses={200: Document("Swagger UI, reading /openapi.json", "text/html")},
)
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE,
        content_type="text/html",
        headers={
            "Cache-Control": CACHE_CONTROL,
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        },
    )


@routes.get(
    ASSETS + "/{name}",
    name="docs.asset",
    summary="A script, style sheet or icon of the documentation page",
    policy=DOCS_POLICY,
    responses={200: "The asset", 404: "No such asset"},
)
async def docs_asset(request: web.Request) -> web.Response:
    found = asset(request.match_info["name"])
    if found is None:
        # The same answer as an unknown address, which it is.
        raise web.HTTPNotFound()
    headers = {"Cache-Control": CACHE_CONTROL}
    body = found.body
    if found.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            headers["Content-Encoding"] = "gzip"
            body = found.gzipped
    return web.Response(body=body, content_type=found.media_type, headers=headers)
