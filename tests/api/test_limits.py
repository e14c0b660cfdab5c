"""Input limits (api/limits.py): bodies over the limit are 413 before they are read in full
(declared or streamed; the Stripe webhook route has its own limit), each API key has a request
rate (429 with Retry-After), and a 503 never carries the upstream service's own error text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from api import stripe_events
from api.app import create_app
from api.billing import payment_errors
from api.limits import RateLimiter
from api.problems import ApiProblem
from config.settings import ApiSettings, Settings
from payments.errors import RetryableGatewayError
from tests.api.helpers import Org, assert_problem
from tests.fakes_stripe import free_port, stripe_settings
from tests.support.stripe_webhooks import PATH as WEBHOOK

LIMITS = ApiSettings(max_body_bytes=1000, max_webhook_body_bytes=4000, rate_limit_per_second=1,
                     rate_limit_burst=3)


@pytest.fixture
async def small(settings: Settings, env) -> AsyncIterator[httpx.AsyncClient]:
    """The app with small limits, and a rate limiter on a clock the test moves."""
    app = create_app(settings.model_copy(update={"api": LIMITS}), temporal_client=env.client)
    clock = [0.0]
    app.state.rate_limiter = RateLimiter(1, 3, clock=lambda: clock[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as client:
        client.clock = clock  # type: ignore[attr-defined]
        yield client


async def test_a_declared_length_over_the_limit_is_refused_unread(small, org: Org):
    body = b'{"email": "a@example.com", "name": "' + b"x" * 2000 + b'"}'
    r = await small.post("/v1/customers", content=body, headers={
        **org.owner, "Content-Type": "application/json"})
    assert assert_problem(r, 413, code="body_too_large")["limit"] == 1000
    r = await small.post(WEBHOOK, content=b"{" + b" " * 3000 + b"}")
    assert_problem(r, 400)  # the webhook route takes more: its signature is checked
    r = await small.post(WEBHOOK, content=b"{" + b" " * 5000 + b"}")
    assert assert_problem(r, 413, code="body_too_large")["limit"] == 4000


async def test_a_streamed_body_is_cut_off_at_the_limit(small, org: Org):
    sent = []

    async def chunks():
        for _ in range(100):  # 100 kB, no Content-Length (chunked)
            sent.append(1)
            yield b" " * 1000

    r = await small.post("/v1/customers", content=chunks(), headers={
        **org.owner, "Content-Type": "application/json"})
    assert_problem(r, 413, code="body_too_large")
    assert len(sent) <= 3  # read up to the limit, not to the end

    async def webhook_chunks():
        for _ in range(10):
            sent.append(1)
            yield b" " * 1000

    sent.clear()
    assert_problem(await small.post(WEBHOOK, content=webhook_chunks()), 413)
    assert len(sent) <= 6


async def test_each_key_has_its_rate(small, org: Org):
    for _ in range(3):  # the burst
        assert (await small.get("/v1/plans", headers=org.member)).status_code == 200
    r = await small.get("/v1/plans", headers=org.member)
    assert_problem(r, 429, code="rate_limited")
    assert r.headers["Retry-After"] == "1"
    assert (await small.get("/v1/plans", headers=org.owner)).status_code == 200  # its own
    small.clock[0] += 1.0  # one token back
    assert (await small.get("/v1/plans", headers=org.member)).status_code == 200
    assert (await small.get("/v1/plans", headers=org.member)).status_code == 429


def test_the_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = RateLimiter(rate=2, burst=2, clock=lambda: now[0])
    assert [bucket.take("k") for _ in range(2)] == [0, 0]
    assert bucket.take("k") == pytest.approx(0.5)
    now[0] = 10.0  # long idle: back to the burst, never above it
    assert [bucket.take("k") for _ in range(3)] == [0, 0, pytest.approx(0.5)]
    assert RateLimiter(rate=0, burst=1).take("k") == 0  # 0: off


async def test_an_unreachable_payment_provider_is_a_503_without_its_error_text(
        settings: Settings, org: Org):
    port = free_port()  # nothing listens: connection refused
    down = settings.model_copy(update={"stripe": stripe_settings(f"http://127.0.0.1:{port}")})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(down)),
                                 base_url="http://api") as client:
        r = await client.post("/v1/customers", json={"email": "a@example.com", "name": "A"},
                              headers=org.owner)
    body = assert_problem(r, 503, code="payments_unavailable")
    assert r.headers["Retry-After"]
    assert str(port) not in r.text and "127.0.0.1" not in r.text
    assert body["detail"] == "the payment provider did not answer; retry with the same key"


def test_no_upstream_text_in_the_webhook_handlers_503():
    secret = "connect to stripe-proxy.internal:8443 failed"
    with pytest.raises(ApiProblem) as raised:
        stripe_events._stripe(lambda: (_ for _ in ()).throw(stripe.APIConnectionError(secret)))
    assert raised.value.status == 503 and "internal" not in raised.value.detail
    with pytest.raises(ApiProblem) as raised, payment_errors("payment_method"):
        raise RetryableGatewayError(secret)
    assert raised.value.status == 503 and "internal" not in raised.value.detail
