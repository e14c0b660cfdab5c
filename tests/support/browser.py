"""Headless Chromium for browser tests: Debian's own (``scripts/ensure-chromium.sh``, which
``make test`` runs) driven by Playwright from PyPI. No browser is downloaded (never run
``playwright install``); without Chromium the tests skip and say why.

``chromium()`` gives a Browser (serve the app with tests.support.serving.served);
``offline_context()`` a fresh context (its own profile) whose requests to anything but this machine are aborted and recorded, so a page that still
reaches for a CDN fails visibly instead of passing on a machine that happens to be online.
Fixtures ``browser`` and ``offline_page``: import them into a test module (``from
tests.support.browser import browser, offline_page  # noqa: F401``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:  # imported lazily below, so a machine without it skips instead of erroring
    from playwright.async_api import Browser, BrowserContext, Page, Route

REPO_ROOT = Path(__file__).resolve().parents[2]
# Not committed (.gitignore: var/): look at them after a run.
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
# Headless, no sandbox (root in CI), and none of Chromium's own traffic (updates, sync,
# field trials, QUIC probes). Playwright gives each launch a fresh temporary profile
# (its own --user-data-dir).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def unavailable() -> str | None:
    """Why browser tests cannot run here, or None (for ``pytest.mark.skipif``)."""
    if chromium_path() is None:
        return ("no Chromium on this machine: `bash scripts/ensure-chromium.sh` installs "
                "Debian's package")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system Chromium under Playwright; skips the test when either is missing."""
    if (why := unavailable()) is not None:
        pytest.skip(why)
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=FLAGS,
                                                   headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def offline_context(browser: Browser, **options) -> AsyncIterator[BrowserContext]:
    """A fresh context where only this machine answers; ``context.blocked`` lists the URLs
    of every request that tried to leave it (``options`` go to ``new_context``)."""
    context = await browser.new_context(service_workers="block", **options)
    context.blocked = []

    async def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            context.blocked.append(url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_local)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def offline_page(browser: Browser) -> AsyncIterator[Page]:
    """A page in an offline_context; ``page.context.blocked`` lists what was refused."""
    async with offline_context(browser, viewport={"width": 1280, "height": 2000}) as context:
        yield await context.new_page()
