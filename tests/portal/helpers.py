"""Helpers of the portal's HTTP tests (the test client talks to the app directly, so links
lose their origin)."""

from __future__ import annotations

import re

import httpx

from tests.api.helpers import Org

RETURN = "https://app.example.com/account"


def link_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def open_link(api: httpx.AsyncClient, org: Org, customer: str) -> dict:
    r = await api.post("/v1/portal_sessions", headers=org.billing_admin,
                       json={"customer": customer, "return_url": RETURN})
    assert r.status_code == 201, r.text
    return r.json()


async def enter(api: httpx.AsyncClient, org: Org, customer: str) -> str:
    """Open a session in the client's cookie jar; answers the pages' CSRF token."""
    link = link_path((await open_link(api, org, customer))["url"])
    assert (await api.get(link)).status_code == 200
    page = await api.get("/portal/payment_method")
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
