"""Who may call what (D21): the routes x roles table in docs/api.md is the one the app declares,
and every route answers every role, no key and another organization's keys as that table says:
allowed roles pass (never 401/403), refused roles get 403, no key 401, another organization's
ids 404 (its member: 403 first), and nothing of the organization's data reaches the other one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accounts.models import Role
from api import access
from api.app import create_app
from tests.api.helpers import Org, assert_problem, create_subscription
from tests.fakes_stripe import CARD_OK

pytestmark = pytest.mark.temporal

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MARKER = re.compile(r"<!-- access-table -->\n(.*?)<!-- /access-table -->", re.S)

# Data only the organization has: none of it may reach another organization's key.
EMAIL, NAME, HOOK = "walk-secret@example.com", "Walk Secret", "https://hooks.example.com/walk"


def test_the_documented_table_is_the_apps(settings):
    documented = MARKER.search(DOC.read_text())
    assert documented, "docs/api.md has no <!-- access-table --> block"
    assert documented.group(1) == access.table(create_app(settings)), (
        "docs/api.md is out of date; paste `python -m api.access` between the markers")


def test_every_route_without_a_rule_stops_the_app(settings):
    from fastapi import APIRouter

    app = create_app(settings)
    stray = APIRouter()

    @stray.get("/v1/stray")
    async def stray_route() -> dict:
        return {}

    app.include_router(stray)
    with pytest.raises(RuntimeError, match="GET /v1/stray declares no access rule"):
        access.routes(app)


def _bodies(org: Org, customer: str) -> dict[tuple[str, str], dict]:
    """A valid body per route, naming the organization's own resources."""
    sub = "/v1/subscriptions/{subscription_id}"
    return {
        ("POST", "/v1/customers"): {"email": "x@example.com", "name": "X",
                                    "organization": org.id},
        ("POST", "/v1/customers/{customer_id}/credits/topups"): {
            "amount": 10, "idempotency_key": "walk-topup"},
        ("POST", "/v1/customers/{customer_id}/credits/usage"): {
            "amount": 1, "idempotency_key": "walk-usage"},
        ("POST", "/v1/customers/{customer_id}/payment_method"): {"card_number": CARD_OK},
        ("POST", "/v1/subscriptions"): {"customer": customer, "plan": "pro-monthly"},
        ("POST", f"{sub}/cancel"): {"mode": "at_period_end"},
        ("POST", f"{sub}/postpone"): {"cancel_at": "2099-01-01T00:00:00Z"},
        ("POST", f"{sub}/pause"): {"mode": "at_period_end"},
        ("POST", f"{sub}/change_plan"): {"plan": "pro-yearly"},
        ("POST", f"{sub}/payment_method"): {"card_number": CARD_OK},
        ("POST", "/v1/webhook_endpoints"): {"url": "https://hooks.example.com/other",
                                            "organization": org.id},
        ("POST", "/v1/webhook_endpoints/{endpoint_id}/replay"): {
            "created": {"gte": "2026-01-01T00:00:00Z"}},
        ("POST", "/v1/portal_sessions"): {"customer": customer,
                                          "return_url": "https://example.com/account"},
    }


async def test_every_route_answers_every_role_and_other_organizations_as_documented(
        api, settings, org, other_org, operator):
    r = await api.post("/v1/customers", headers=org.owner, json={
        "email": EMAIL, "name": NAME, "payment_method": CARD_OK})
    customer = r.json()["id"]
    sub = (await create_subscription(api, org, customer))["id"]
    r = await api.post("/v1/webhook_endpoints", json={"url": HOOK}, headers=org.owner)
    endpoint = r.json()["id"]
    ids = {"customer_id": customer, "subscription_id": sub, "organization_id": org.id,
           "endpoint_id": endpoint, "slug": "validation-error",
           "delivery_id": 999_999, "replay_id": "wrp_none",  # none: the role is checked first
           "invoice_id": "in_none"}
    bodies = _bodies(org, customer)
    lists = {"/v1/subscriptions", "/v1/webhook_endpoints", "/v1/events",
             "/v1/invoices"}  # GET: name the organization
    keys = {Role.OWNER: org.owner, Role.BILLING_ADMIN: org.billing_admin,
            Role.MEMBER: org.member, Role.OPERATOR: operator}
    others = {Role.OWNER: other_org.owner, Role.MEMBER: other_org.member}

    # Deletions last, so every other route still finds what it names.
    routes = sorted(access.routes(create_app(settings)), key=lambda r: r.method == "DELETE")
    assert len(routes) >= 25
    seen = 0
    for route in routes:
        if route.path.startswith(("/portal", "/codec")):
            continue  # their own credentials: tests/portal, tests/deploy/test_codec_endpoint.py
        path = route.path.format(**ids)
        params = {"organization": org.id} if route.method == "GET" and route.path in lists \
            else {"plan": "pro-yearly"} if route.path.endswith("/change_plan/preview") else None
        body = bodies.get((route.method, route.path))

        async def call(headers):
            return await api.request(route.method, path, headers=headers, json=body,
                                     params=params)

        where = f"{route.method} {route.path}"
        if route.roles is None:  # no API key: never asks for one
            r = await call({})
            assert r.status_code not in (401, 403) and r.status_code < 500, (where, r.text)
            continue
        assert_problem(await call({}), 401, code="missing_api_key")
        for role, headers in others.items():  # another organization's keys first
            r = await call(headers)
            status = 403 if role not in route.roles else (200 if path == "/v1/plans" else 404)
            assert r.status_code == status, (where, role, r.text)
            assert not [s for s in (EMAIL, NAME, HOOK, "Acme") if s in r.text], (where, r.text)
        for role in access.COLUMNS:
            r = await call(keys[role])
            if role in route.roles:
                assert r.status_code not in (401, 403) and r.status_code < 500, (
                    where, role, r.status_code, r.text)
            else:
                assert_problem(r, 403, code="role_not_allowed")
            seen += 1
    assert seen == 4 * sum(1 for r in routes if r.roles is not None)
