"""The dashboard's files: the pages in `api/static/` and an allowlist of browser modules from `node_modules/`.

There is no build step and no CDN (the machines have no internet): the pages are plain HTML and ES modules,
and the three npm modules they import (uplot, cytoscape, @noble/hashes, pinned in package.json) are served
straight from `node_modules/` at `/vendor/...`. Only files named here are served, looked up by their exact
URL in a table: nothing in a request path is ever joined onto a directory, so `..` has nothing to climb.

Every response carries a strict Content-Security-Policy (this origin only, no inline script or style), so
a string the API returns can never run as code in a page even if a page forgot to escape it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from core.config import project_root

__all__ = ["CSP", "STATIC_DIR", "VENDOR", "mount", "static_files", "vendor_files"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

# URL under /vendor/ → file under node_modules/. @noble/hashes' sha2.js imports ./_md.js, ./_u64.js and
# ./utils.js by relative path, so they sit beside it under the same URL folder.
VENDOR: dict[str, str] = {
    "uplot/uPlot.esm.js": "uplot/dist/uPlot.esm.js",
    "uplot/uPlot.min.css": "uplot/dist/uPlot.min.css",
    "cytoscape/cytoscape.esm.min.mjs": "cytoscape/dist/cytoscape.esm.min.mjs",
    "noble-hashes/sha2.js": "@noble/hashes/sha2.js",
    "noble-hashes/_md.js": "@noble/hashes/_md.js",
    "noble-hashes/_u64.js": "@noble/hashes/_u64.js",
    "noble-hashes/utils.js": "@noble/hashes/utils.js",
}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}

# Pages revalidate on every load (a new deployment shows at once); the pinned vendor modules change only
# with package.json, so the browser may keep them an hour.
_PAGE_CACHE = "no-cache"
_VENDOR_CACHE = "public, max-age=3600"


@dataclass(frozen=True)
class _Asset:
    path: Path
    cache: str


def node_modules() -> Path:
    """The checkout's node_modules (the project is installed editable, so the checkout is always there)."""
    return project_root() / "node_modules"


def static_files() -> dict[str, Path]:
    """URL path (without the leading /) → file, for every file under api/static with a known type."""
    found: dict[str, Path] = {}
    for file in sorted(STATIC_DIR.rglob("*")):
        if file.is_file() and file.suffix in _TYPES:
            found[file.relative_to(STATIC_DIR).as_posix()] = file
    return found


def vendor_files() -> dict[str, Path]:
    """`vendor/<name>` → the file in node_modules it stands for (present or not)."""
    root = node_modules()
    return {f"vendor/{url}": root / rel for url, rel in VENDOR.items()}


def _table() -> dict[str, _Asset]:
    table = {url: _Asset(path, _PAGE_CACHE) for url, path in static_files().items()}
    table.update({url: _Asset(path, _VENDOR_CACHE) for url, path in vendor_files().items()})
    # short names for the pages: /technical is technical.html, / is index.html
    for url in list(table):
        if url.endswith(".html") and "/" not in url:
            table[url.removesuffix(".html")] = table[url]
    table[""] = table["index.html"]
    return table


def _headers(asset: _Asset, etag: str) -> dict[str, str]:
    return {
        "Cache-Control": asset.cache,
        "ETag": etag,
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def _not_found(url: str) -> JSONResponse:
    return JSONResponse({"error": f"there is no dashboard file at /{url}"}, status_code=404,
                        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})


def mount(app: FastAPI) -> None:
    """Adds the dashboard's routes to `app` (after the API's routers, so /api/v1 and /metrics come first)."""
    table = _table()

    async def serve(request: Request) -> Response:
        url = request.url.path.lstrip("/")
        asset = table.get(url)
        if asset is None:
            return _not_found(url)
        try:
            body = asset.path.read_bytes()
        except OSError:  # a vendored module missing: node_modules not installed (make install)
            return _not_found(url)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = _headers(asset, etag)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=_TYPES[asset.path.suffix], headers=headers)

    # explicit shapes (never a catch-all): an unknown /api/v1 path keeps its own 404 and 405
    for shape in ("/", "/{name}", "/js/{name}", "/img/{name}", "/vendor/{package}/{name}"):
        app.add_api_route(shape, serve, methods=["GET", "HEAD"], include_in_schema=False)
