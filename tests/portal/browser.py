"""Debian's Chromium driven by Playwright, for the portal's browser tests.

The system browser only (``/usr/bin/chromium``, installed by scripts/ensure-chromium.sh):
Playwright's own browser download is never used. Without Chromium or Playwright the tests
skip with that reason. Screenshots go to var/screenshots/portal/ (not committed).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "portal"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"Debian's Chromium is not installed at {CHROMIUM} (scripts/ensure-chromium.sh)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page, name: str) -> None:
    """The page as it is now, at desktop and at phone width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)
