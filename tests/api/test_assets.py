"""The dashboard's files: everything a page loads is same-origin and served, the vendored modules are
the allowlisted files from node_modules, nothing points at the internet, and no path escapes."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.assets import CSP, STATIC_DIR, VENDOR, static_files, vendor_files
from tests.api.conftest import Tokens

ATTR = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
# static imports and re-exports at the start of a line (an example inside a doc comment starts with *)
IMPORT = re.compile(r"""^\s*(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']""", re.MULTILINE)
ORIGIN = "http://testserver"


def _refs(url: str, body: str, content_type: str) -> list[str]:
    """What a page or module loads, as absolute URLs (relative imports resolved against `url`)."""
    found = ATTR.findall(body) if content_type.startswith("text/html") else []
    if content_type.startswith("text/javascript"):
        found += IMPORT.findall(body)
    return [urljoin(url, ref) for ref in found]


def test_every_page_loads_only_same_origin_files_that_are_served(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _ = offline_app
    pages = [f"{ORIGIN}/{name}" for name in static_files() if name.endswith(".html")]
    assert len(pages) >= 7, pages  # index and the six views
    seen: set[str] = set()
    queue = deque(pages)
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        assert urlsplit(url).netloc == "testserver", f"{url} is not same-origin"
        response = client.get(urlsplit(url).path)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:100]}"
        content_type = response.headers["content-type"]
        if url.endswith((".js", ".mjs")):
            assert content_type.startswith("text/javascript"), (url, content_type)  # else no module runs
        queue.extend(_refs(url, response.text, content_type))
    # the crawl reached the pinned modules and what they import in turn
    for url in ("/vendor/cytoscape/cytoscape.esm.min.mjs", "/vendor/uplot/uPlot.esm.js", "/vendor/uplot/uPlot.min.css",
                "/vendor/noble-hashes/sha2.js", "/vendor/noble-hashes/_md.js", "/vendor/noble-hashes/utils.js"):
        assert ORIGIN + url in seen, url


def test_every_allowlisted_vendor_file_exists_and_is_served_with_its_type(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _ = offline_app
    files = vendor_files()
    assert len(files) == len(VENDOR)
    for url, path in files.items():
        assert path.is_file(), f"{path} is missing: run make install (npm ci)"
        response = client.get(f"/{url}")
        assert response.status_code == 200, url
        assert response.content == path.read_bytes()
        expected = "text/css" if url.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(expected), url
        assert "max-age" in response.headers["cache-control"]


def test_no_file_in_static_names_the_internet() -> None:
    offenders = [f"{path.relative_to(STATIC_DIR)}: {match.group(0)}"
                 for path in STATIC_DIR.rglob("*") if path.is_file()
                 for match in re.finditer(r"https?://[^\s\"'<>)]*", path.read_text(errors="replace"))]
    assert offenders == []


def test_pages_have_no_inline_script_or_style_the_policy_would_block() -> None:
    for path in STATIC_DIR.glob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path.name
        assert "<style" not in html and not re.search(r"\sstyle\s*=", html), path.name
        assert not re.search(r"\son[a-z]+\s*=", html), path.name


def test_pages_carry_a_self_only_policy_and_revalidate(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _ = offline_app
    page = client.get("/")
    assert page.status_code == 200 and "<main" in page.text
    assert page.headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP and "script-src 'self'" in CSP and "unsafe" not in CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-cache"
    again = client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/technical").text == (STATIC_DIR / "technical.html").read_text()


@pytest.mark.parametrize("path", [
    "/vendor/noble-hashes/..%2F..%2F..%2Fpackage.json",
    "/vendor/uplot/package.json",
    "/vendor/%2e%2e/%2e%2e/pyproject.toml",
    "/js/..%2F..%2Fassets.py",
    "/..%2Fassets.py",
    "/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/js/api.ts",
    "/vendor/cytoscape/cytoscape.cjs.js",  # in node_modules, but not allowlisted
])
def test_a_path_outside_the_allowlist_is_a_404_in_one_sentence(offline_app: tuple[TestClient, Tokens], path: str) -> None:
    client, _ = offline_app
    response = client.get(path)
    assert response.status_code == 404, path
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"], body


def test_a_missing_vendored_module_is_a_404_not_a_trace(offline_app: tuple[TestClient, Tokens], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QEAIMS_PROJECT_ROOT", str(tmp_path))  # a checkout without node_modules
    from api.app import create_app
    from core.config import load_settings

    client = TestClient(create_app(load_settings(home=tmp_path / "home", rpc_port=1), follow=False),
                        raise_server_exceptions=False)
    response = client.get("/vendor/uplot/uPlot.esm.js")
    assert response.status_code == 404
    assert response.json() == {"error": "there is no dashboard file at /vendor/uplot/uPlot.esm.js"}
    assert client.get("/").status_code == 200  # the pages themselves are in the package
