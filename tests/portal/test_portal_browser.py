"""The customer portal in a real browser on the real stack: the app served by uvicorn on a
port, the worker, the time-skipping Temporal server, localstripe and SQLite, driven through
Debian's Chromium. One stack and one browser for the module; every page is screenshotted at
desktop and phone width into var/screenshots/portal/.

The shortcut: the Temporal server skips time, so an expired link is made by jumping the clock,
not by waiting."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from accounts import keys
from api.app import create_app
from api.portal.present import when
from config.settings import REPO_ROOT, Settings, TemporalSettings
from store.engine import get_engine
from store.migrate import upgrade
from tests.api.helpers import bearer, dt
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.portal.browser import chromium, screenshot, unavailable
from tests.support.temporal import time_skipping_env
from workers.main import build_worker

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")

RETURN = "https://app.example.com/account"


@dataclass
class Stack:
    base: str
    database_url: str
    api: httpx.AsyncClient
    owner: dict[str, str]
    env: WorkflowEnvironment
    browser: object


@pytest.fixture(scope="module")
async def stack(tmp_path_factory, localstripe_url) -> AsyncIterator[Stack]:
    url = f"sqlite:///{tmp_path_factory.mktemp('portal') / 'portal.db'}"
    upgrade(url)
    settings = Settings(database_url=url, stripe=stripe_settings(localstripe_url),
                        temporal=TemporalSettings(task_queue=f"portal-{uuid.uuid4().hex[:8]}"))
    _, owner = keys.create_organization_with_owner(get_engine(url), "Acme")
    env = await time_skipping_env()
    app = create_app(settings, temporal_client=env.client, clock=env.get_current_time)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue from here on: no need to wait for the server
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        async with build_worker(env.client, settings):
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                async with httpx.AsyncClient(base_url=base, timeout=30) as api, \
                        chromium() as browser:
                    yield Stack(base, url, api, bearer(owner), env, browser)
            finally:
                server.should_exit = True
                await serving
    finally:
        sock.close()
        await env.shutdown()


async def _subscribed_customer(stack: Stack, email: str) -> tuple[dict, dict]:
    r = await stack.api.post("/v1/customers", headers=stack.owner, json={
        "email": email, "name": "Ada Lovelace", "payment_method": CARD_OK})
    assert r.status_code == 201, r.text
    customer = r.json()
    r = await stack.api.post("/v1/subscriptions", headers=stack.owner,
                             json={"customer": customer["id"], "plan": "pro-monthly"})
    assert r.status_code == 201, r.text
    return customer, r.json()


async def _link(stack: Stack, customer_id: str) -> str:
    r = await stack.api.post("/v1/portal_sessions", headers=stack.owner,
                             json={"customer": customer_id, "return_url": RETURN})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.startswith(f"{stack.base}/portal/enter?token=")  # the origin the API was called on
    return url


async def test_cancel_at_period_end_with_a_reason_then_reactivate(stack: Stack):
    customer, sub = await _subscribed_customer(stack, "ada@example.com")
    end = when(dt(sub["renewal"]["date"]))
    r = await stack.api.post(f"/v1/customers/{customer['id']}/credits/topups",
                             headers=stack.owner, json={"amount": 750, "idempotency_key": "t1"})
    assert r.status_code == 200, r.text
    context = await stack.browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    # Followed from another site, as a customer would: the session cookie is SameSite=Strict,
    # and the enter page moves on to /portal by itself with it.
    await page.set_content(f'<a href="{await _link(stack, customer["id"])}">Billing</a>')
    await page.get_by_role("link", name="Billing").click()
    await page.wait_for_url(f"{stack.base}/portal")
    assert await page.get_by_test_id("status-line").inner_text() == f"Renewing on {end}"
    purchased = page.locator(".credits div").filter(
        has=page.get_by_text("Purchased credits", exact=True))
    assert "750" in await purchased.inner_text()
    await screenshot(page, "01-home")

    await page.get_by_role("link", name="Manage Pro (monthly)").click()
    assert await page.get_by_test_id("status-line").inner_text() == f"Renewing on {end}"
    await screenshot(page, "02-subscription")

    await page.get_by_role("link", name="Cancel subscription").click()
    await page.get_by_role("heading", name="Before you go: 20% off").wait_for()
    assert await page.get_by_label("At the end of the paid period").is_checked()
    main = await page.locator("main").inner_text()
    assert f"Your access ends on {end}" in main
    assert "750 purchased credits are locked when your access ends" in main
    await screenshot(page, "03-cancel")
    await page.get_by_label("It costs too much").check()
    await page.get_by_label("Anything else").fill("Too pricey for a side project")
    await page.get_by_role("button", name="Confirm cancellation").click()

    await page.get_by_role("status").wait_for()
    assert await page.get_by_role("status").inner_text() == (
        f"Your subscription is cancelled. You keep access until {end}, and you will not be "
        "charged again.")
    assert await page.get_by_test_id("status-line").inner_text() == f"Cancelling on {end}"
    await screenshot(page, "04-cancelled")
    r = await stack.api.get(f"/v1/subscriptions/{sub['id']}", headers=stack.owner)
    details = r.json()["cancellation_details"]
    assert r.json()["status"] == "non_renewing" and details["feedback"] == "too_expensive"
    assert details["requested_by"] == {"kind": "customer", "id": customer["id"]}

    stale = await context.new_page()  # the same page left open in another tab
    await stale.goto(page.url)
    await page.get_by_role("button", name="Keep my subscription").click()
    await page.get_by_role("status").wait_for()
    assert await page.get_by_test_id("status-line").inner_text() == f"Renewing on {end}"
    await screenshot(page, "05-reactivated")
    await stale.get_by_role("button", name="Keep my subscription").click()
    alert = await stale.get_by_role("alert").inner_text()
    assert "there is nothing to reactivate" in alert  # the workflow's own refusal
    await screenshot(stale, "06-refused")

    await page.goto(f"{stack.base}/portal/payment_method")
    await screenshot(page, "07-card")
    await page.get_by_label("Card number").fill("4242 4242 4242 4242")
    await page.get_by_role("button", name="Save card").click()
    await page.get_by_role("status").wait_for()

    await page.goto(f"{stack.base}/portal")
    assert await page.get_by_test_id("card").inner_text() == "Visa ending 4242"
    r = await stack.api.get("/v1/invoices", params={"customer": customer["id"]},
                            headers=stack.owner)
    number = r.json()["data"][-1]["number"]  # the first period's; the top-up's is newer
    await page.goto(f"{stack.base}/portal/invoices")
    row = page.get_by_test_id("invoice").filter(has_text=number)
    assert "Subscription" in await row.inner_text() and "Paid" in await row.inner_text()
    await screenshot(page, "10-invoices")
    async with page.expect_download() as download:
        await row.get_by_role("link", name=f"Download PDF of {number}").click()
    assert (await download.value).suggested_filename == f"{number}.pdf"
    await context.close()


async def test_links_work_once_and_only_for_their_own_customer(stack: Stack):
    customer, _ = await _subscribed_customer(stack, "grace@example.com")
    _, someone_else = await _subscribed_customer(stack, "alan@example.com")
    link = await _link(stack, customer["id"])
    context = await stack.browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(link)
    await page.wait_for_url(f"{stack.base}/portal")

    response = await page.goto(f"{stack.base}/portal/subscriptions/{someone_else['id']}")
    assert response.status == 404
    assert "no such subscription" in await page.locator("main").inner_text()
    await screenshot(page, "08-not-found")

    response = await page.goto(link)
    assert response.status == 403
    await page.get_by_role("heading", name="This link can no longer be used").wait_for()
    await screenshot(page, "09-link-used")

    unused = await _link(stack, customer["id"])
    await stack.env.sleep(timedelta(minutes=5, seconds=1))
    response = await page.goto(unused)
    assert response.status == 403
    assert await page.get_by_role("link", name="Back to app.example.com").count() == 2
    await context.close()


async def test_subs_demo_prints_a_portal_link(stack: Stack):
    """`make dev` then `subs demo`: the printed link opens the demo customer's page."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "subscription_engine_cli.py", "demo", "--plan", "pro-monthly",
        "--api-url", stack.base, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SUBS_DATABASE_URL": stack.database_url})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    link = re.search(r"^Portal: +(\S+)$", out.decode(), flags=re.M).group(1)
    context = await stack.browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(link)
    await page.wait_for_url(f"{stack.base}/portal")
    assert (await page.get_by_test_id("status-line").inner_text()).startswith("Renewing on ")
    await context.close()
