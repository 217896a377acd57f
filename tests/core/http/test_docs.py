"""/docs: Swagger UI from a Python package, no CDN, rendered by a real headless browser."""

from __future__ import annotations

import asyncio
import gzip
import html
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.host.server import RunningServer, start_server
from core.plugin_host import keys as plugin_host_keys
from tests.support.services import service_unavailable

ASSET_URL = re.compile(r'(?:src|href)="([^"]+)"')


async def test_the_page_loads_only_assets_of_this_server(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    urls = ASSET_URL.findall(page)
    assert urls, page
    assert all(url.startswith("/docs/assets/") for url in urls), urls
    for url in urls:
        asset = await client.get(url)
        assert asset.status == 200, url
        assert len(await asset.read()) > 0, url


async def test_scripts_and_styles_are_gzipped_for_clients_that_accept_it(
    make_client: Any,
) -> None:
    client = await make_client()
    url = client.make_url("/docs/assets/swagger-ui-bundle.js")
    plain = await client.session.get(url, headers={"Accept-Encoding": "identity"})
    packed = await client.session.get(
        url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert plain.content_type == packed.content_type == "text/javascript"
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == plain.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await packed.read()) == await plain.read()


@pytest.mark.parametrize("name", ["no-such.js", "..%2F..%2Fcore.py", "swagger-editor.js"])
async def test_an_asset_the_page_does_not_use_is_404(make_client: Any, name: str) -> None:
    client = await make_client()
    response = await client.get(f"/docs/assets/{name}")
    assert response.status == 404
    assert response.content_type == "application/problem+json"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        service_unavailable("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture
async def live_server(make_settings: Any) -> AsyncIterator[RunningServer]:
    server = await start_server(make_settings(server={"port": 0}))
    try:
        yield server
    finally:
        await server.drain()


@pytest.mark.slow
async def test_a_headless_browser_renders_every_operation_from_the_servers_own_document(
    live_server: RunningServer, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Virtual time runs until the page is idle (its scripts, /openapi.json, the render).
        "--virtual-time-budget=20000",
        "--dump-dom",
        f"http://127.0.0.1:{live_server.port}/docs",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    dom = stdout.decode()
    assert process.returncode == 0, stderr.decode()[-2000:]
    rendered = {
        (method, html.unescape(path))
        for method, path in re.findall(
            r'<div class="opblock opblock-(\w+)[^"]*"[^>]*>.*?data-path="([^"]+)"', dom
        )
    }
    documented = {
        (spec.method.lower(), re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", spec.path))
        for spec in live_server.app[plugin_host_keys.ROUTES]
    }
    assert rendered == documented, dom[-3000:]
    assert "File a petition (it goes to moderation)" in dom
