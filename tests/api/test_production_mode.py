"""Production (SUBS_ENVIRONMENT=production or a live Stripe key) refuses to start with the
development webhook secret, and the API takes payment method ids only: raw card numbers are a
422 naming the field (test keys still take test cards)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from config.settings import Settings, StripeSettings
from tests.api.helpers import Org, assert_problem
from tests.fakes_stripe import CARD_OK

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_deployment_secret"


@pytest.mark.parametrize("production", [{"environment": "production"},
                                        {"stripe": StripeSettings(api_key="sk_live_x")},
                                        {"stripe": StripeSettings(api_key="rk_live_x")}])
def test_production_needs_its_own_webhook_secret(production):
    with pytest.raises(ValidationError, match="needs SUBS_STRIPE__WEBHOOK_SECRET"):
        Settings(**production)
    stripe = production.get("stripe", StripeSettings())
    ok = Settings(**{**production, "stripe": stripe.model_copy(
        update={"webhook_secret": SECRET})})
    assert ok.production
    assert not Settings().production


def test_the_api_refuses_to_start_with_one_clear_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBS_")}
    env["SUBS_STRIPE__API_KEY"] = "sk_live_x"
    done = subprocess.run([sys.executable, "-m", "api"], cwd=ROOT, env=env, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "api: refusing to start: production (SUBS_ENVIRONMENT=production or a live Stripe "
        "key) needs SUBS_STRIPE__WEBHOOK_SECRET: the development default lets anyone forge "
        "Stripe events"]


async def test_raw_card_numbers_only_with_test_keys(settings: Settings, env, org: Org):
    live = settings.model_copy(update={
        "environment": "production",
        "stripe": settings.stripe.model_copy(update={"webhook_secret": SECRET})})
    app = create_app(live, temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as http:
        r = await http.post("/v1/customers", headers=org.owner, json={
            "email": "a@example.com", "name": "A", "payment_method": CARD_OK})
        body = assert_problem(r, 422, code="card_number_not_allowed")
        assert body["errors"][0]["field"] == "payment_method"
        r = await http.post("/v1/customers", headers=org.owner, json={
            "email": "a@example.com", "name": "A"})
        assert r.status_code == 201, r.text
        customer = r.json()["id"]
        for path in (f"/v1/customers/{customer}/payment_method",
                     "/v1/subscriptions/sub_any/payment_method"):
            r = await http.post(path, headers=org.owner, json={"card_number": CARD_OK})
            body = assert_problem(r, 422, code="card_number_not_allowed")
            assert body["errors"][0]["field"] == "card_number"

    # The same request with test keys (development) takes the test card.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_app(settings, temporal_client=env.client)), base_url="http://api") as http:
        r = await http.post("/v1/customers", headers=org.owner, json={
            "email": "a@example.com", "name": "A", "payment_method": CARD_OK})
        assert r.status_code == 201, r.text
