"""The API docs work without the internet (issue 14): /docs (Swagger UI) and /redoc load their
scripts from the app itself (fastapi-offline), not a CDN. Debian's headless Chromium loads
the real pages with every request off this machine aborted, and must find the operations
rendered; screenshots go to var/screenshots/ (not committed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from api.app import create_app
from config.settings import Settings
from tests.support.browser import SCREENSHOTS, browser, offline_page  # noqa: F401
from tests.support.serving import served

if TYPE_CHECKING:
    from playwright.async_api import Page

expect = pytest.importorskip("playwright.async_api", reason="the playwright package is not "
                             "installed (pip install -e '.[dev]')").expect
OPERATIONS = ["/v1/subscriptions/{subscription_id}/cancel", "/v1/customers"]
RENDERED_WITHIN = 20_000  # ms: generous for a loaded CI machine; a blank page never renders
REDOCLY_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"


async def test_docs_render_offline(offline_page: Page, sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with served(app) as base:
        response = await offline_page.goto(f"{base}/docs")
        assert response is not None and response.ok
        for path in OPERATIONS:
            await expect(offline_page.locator(
                f'.opblock-summary-path[data-path="{path}"]').first
                         ).to_be_visible(timeout=RENDERED_WITHIN)
        assert offline_page.context.blocked == []
        await offline_page.screenshot(path=SCREENSHOTS / "docs.png", full_page=False)

        response = await offline_page.goto(f"{base}/redoc")
        assert response is not None and response.ok
        await expect(offline_page.locator("h2", has_text="Cancel a subscription").first
                     ).to_be_visible(timeout=RENDERED_WITHIN)
        await offline_page.screenshot(path=SCREENSHOTS / "redoc.png", full_page=False)
    # Nothing left the machine but ReDoc's "API docs by Redocly" badge (an image it always
    # links from its CDN; the page does not need it).
    assert [url for url in offline_page.context.blocked
            if not url.startswith(REDOCLY_BADGE)] == []
    assert (SCREENSHOTS / "docs.png").stat().st_size > 10_000
