"""Playwright over the distribution's Chromium (`/usr/bin/chromium`, installed by `make system`).

Playwright's own browser download is never used (the machines have no internet, and `playwright
install` would fetch one); a missing Chromium fails the test with what to run, it never skips. The
flags are those the environment probe found needed here: without the background-networking ones
Chromium's refused connections to Google's services pile up. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.config import project_root

__all__ = ["CHROMIUM", "DESKTOP", "PHONE", "SCREENSHOTS", "Browsers", "browsers"]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SCREENSHOTS = project_root() / "build" / "screenshots"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 900}}
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
                         "device_scale_factor": 3}


@dataclass
class Browsers:
    """A desktop and a phone context on one Chromium; pages record their console errors."""

    desktop: Any
    phone: Any
    errors: list[str]

    def page(self, context: Any) -> Any:
        page = context.new_page()
        page.on("console", lambda msg: self.errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    @staticmethod
    def shot(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def browsers(origin: str) -> Iterator[Browsers]:
    """Chromium with a desktop (1366×900) and a phone (390×844) context, notifications allowed at `origin`."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run make system (apt-get install chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            desktop = browser.new_context(**DESKTOP)
            phone = browser.new_context(**PHONE)
            for context in (desktop, phone):
                context.grant_permissions(["notifications"], origin=origin)
            yield Browsers(desktop=desktop, phone=phone, errors=[])
        finally:
            browser.close()
