"""Stripe webhooks through HTTP: payloads signed with Stripe's real scheme (HMAC-SHA256 over
"{t}.{payload}", header "t=...,v1=..."), localstripe holding the current facts.

Forged, tampered and stale deliveries are refused and change nothing; a duplicate is processed
once; an older event arriving after a newer one changes nothing (handlers act on current
facts); a new default payment method retries a past_due subscription's payment (D9) and it
becomes active again, against the real worker on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
import stripe
from sqlmodel import Session, select

from accounts.customers import get_customer
from api.dunning import retry_dunning
from api.observability import access_log
from api.stripe_events import retry_update_id
from domain.model import Actor
from payments.models import ChargeAttempt
from store.engine import get_engine
from store.types import utcnow
from tests.api.helpers import (assert_problem, create_customer, declining_subscription, dt,
                               settle, sleep_past_period_end)
from tests.fakes_stripe import CARD_DECLINED
from tests.support.stripe_webhooks import PATH, Stripe, event, sign, signed
from webhooks import customers as webhook_customers
from webhooks import store as webhook_store
from workflows.logs import JsonFormatter

pytestmark = pytest.mark.temporal


async def deliver(http, settings, evt: dict[str, Any], *, secret: str | None = None,
                  timestamp: int | None = None):
    payload, headers = signed(evt, secret or settings.stripe.webhook_secret, timestamp)
    return await http.post(PATH, content=payload, headers=headers)


async def test_forged_tampered_and_stale_deliveries_change_nothing(http, settings, org):
    customer = await create_customer(http, org)
    at_stripe = Stripe(settings)
    new_pm = at_stripe.attach(customer["id"])
    evt = event("customer.updated", at_stripe.customer(customer["id"]))
    payload = json.dumps(evt).encode()
    engine = get_engine(settings.database_url)

    refusals = [
        ({"Stripe-Signature": sign(payload, "whsec_someone_else")}, payload, "signature_invalid"),
        ({"Stripe-Signature": sign(payload, settings.stripe.webhook_secret)},
         payload.replace(b'"livemode": false', b'"livemode": true'), "signature_invalid"),
        ({"Stripe-Signature": sign(payload, settings.stripe.webhook_secret,
                                   int(time.time()) - settings.stripe.webhook_tolerance_seconds
                                   - 5)}, payload, "signature_expired"),
        ({"Stripe-Signature": "t=abc,v1=zzz"}, payload, "signature_invalid"),
        ({}, payload, "signature_missing"),
    ]
    for headers, body, code in refusals:
        r = await http.post(PATH, content=body, headers=headers)
        assert_problem(r, 400, code=code, type="/problems/invalid-signature")
        assert webhook_store.get(engine, evt["id"]) is None
        assert at_stripe.local_default(customer["id"]) == customer["default_payment_method"]

    r = await deliver(http, settings, evt)
    assert r.status_code == 200, r.text
    assert r.json()["handled"] is True and r.json()["duplicate"] is False
    assert at_stripe.local_default(customer["id"]) == new_pm
    got = (await http.get(f"/v1/customers/{customer['id']}", headers=org.member)).json()
    assert got["default_payment_method"] == new_pm


async def test_a_duplicate_delivery_is_processed_once(http, settings, org):
    customer = await create_customer(http, org)
    at_stripe = Stripe(settings)
    second = at_stripe.attach(customer["id"])
    evt = event("customer.updated", at_stripe.customer(customer["id"]))
    r = await deliver(http, settings, evt)
    assert r.json()["handled"] is True and at_stripe.local_default(customer["id"]) == second

    # The default changes again at Stripe; a redelivery of the first event must not act (had it
    # run its handler, it would have read the current facts and adopted the third method).
    third = at_stripe.attach(customer["id"])
    r = await deliver(http, settings, evt)
    assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is True and r.json()["handled"] is False
    assert at_stripe.local_default(customer["id"]) == second != third

    # Concurrent deliveries of one event: exactly one of them acts. The others find it done
    # (200 duplicate) or still being handled: 409 with Retry-After, so Stripe comes back later.
    evt = event("customer.updated", at_stripe.customer(customer["id"]))
    answers = await asyncio.gather(*(deliver(http, settings, evt) for _ in range(4)))
    acted = [a for a in answers if a.status_code == 200 and not a.json()["duplicate"]]
    assert len(acted) == 1 and acted[0].json()["handled"] is True, [a.text for a in answers]
    for other in (a for a in answers if a is not acted[0]):
        if other.status_code == 409:
            assert_problem(other, 409, code="event_in_progress", type="/problems/in-progress")
            assert 1 <= int(other.headers["Retry-After"]) <= settings.stripe.webhook_lease_seconds
        else:
            assert other.status_code == 200 and other.json()["duplicate"] is True, other.text
    assert at_stripe.local_default(customer["id"]) == third
    assert (await deliver(http, settings, evt)).json()["duplicate"] is True


async def test_an_older_event_after_a_newer_one_is_harmless(http, settings, org):
    customer = await create_customer(http, org, card=None)
    at_stripe = Stripe(settings)
    older_pm = at_stripe.attach(customer["id"], default=False)
    older = event("payment_method.attached", at_stripe.payment_method(older_pm),
                  created=int(time.time()) - 60)
    newer_pm = at_stripe.attach(customer["id"])
    newer = event("customer.updated", at_stripe.customer(customer["id"]))

    r = await deliver(http, settings, newer)
    assert r.json()["handled"] is True and at_stripe.local_default(customer["id"]) == newer_pm
    r = await deliver(http, settings, older)  # says "attached older_pm": the newer default stays
    assert r.status_code == 200, r.text
    assert r.json()["detail"] == f"unchanged: {newer_pm} is already the default"
    assert at_stripe.local_default(customer["id"]) == newer_pm
    assert at_stripe.customer(customer["id"])["invoice_settings"] == {
        "default_payment_method": newer_pm}


async def test_an_attached_method_becomes_the_default_when_there_is_none(http, settings, org):
    customer = await create_customer(http, org, card=None)
    at_stripe = Stripe(settings)
    pm = at_stripe.attach(customer["id"], default=False)
    r = await deliver(http, settings, event("payment_method.attached",
                                            at_stripe.payment_method(pm)))
    assert r.status_code == 200 and r.json()["handled"] is True, r.text
    assert at_stripe.local_default(customer["id"]) == pm
    assert at_stripe.customer(customer["id"])["invoice_settings"]["default_payment_method"] == pm


async def test_unknown_types_foreign_customers_and_bad_envelopes(http, settings, org):
    r = await deliver(http, settings, event("invoice.finalized", {"id": "in_1"}))
    assert r.status_code == 200 and r.json()["handled"] is False
    assert "not an event we act on" in r.json()["detail"]
    r = await deliver(http, settings, event("customer.updated", {"id": "cus_not_ours"}))
    assert r.status_code == 200 and r.json()["handled"] is False
    assert "not one of our customers" in r.json()["detail"]

    evt = event("customer.updated", {"id": "cus_x"})
    del evt["data"]
    body = assert_problem(await deliver(http, settings, evt), 422, code="invalid_event")
    assert body["errors"][0]["field"] == "data"
    payload = b"not json"
    signature = sign(payload, settings.stripe.webhook_secret)
    r = await http.post(PATH, content=payload, headers={"Stripe-Signature": signature})
    assert_problem(r, 422, code="invalid_event")


async def test_a_new_default_at_stripe_retries_a_past_due_payment(api, env, settings, org):
    customer, sub = await declining_subscription(api, org)
    end = dt(sub["current_period_end"])
    await sleep_past_period_end(env, sub, timedelta(hours=1))

    async def status_is(status):
        r = await api.get(f"/v1/subscriptions/{sub['id']}", headers=org.member)
        return r.json() if r.json()["status"] == status else None

    await settle(lambda: status_is("past_due"))

    at_stripe = Stripe(settings)
    good = at_stripe.attach(customer["id"])  # the customer fixes the card at Stripe
    updated = event("customer.updated", at_stripe.customer(customer["id"]))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    try:
        r = await deliver(api, settings, updated)
    finally:
        access_log.removeHandler(handler)
    assert r.status_code == 200, r.text
    assert r.json()["retried_subscriptions"] == [sub["id"]]
    logged = json.loads(stream.getvalue().splitlines()[-1])
    assert (logged["route"], logged["subscription_id"]) == (PATH, sub["id"])
    paid = await settle(lambda: status_is("active"))
    assert dt(paid["current_period_start"]) == end and paid["has_access"] is True

    # The same change announced again (redelivery, or the attach event) retries nothing.
    assert (await deliver(api, settings, updated)).json()["duplicate"] is True
    r = await deliver(api, settings, event("payment_method.attached",
                                           at_stripe.payment_method(good)))
    assert r.json()["retried_subscriptions"] == [] and r.json()["handled"] is True


async def test_a_takeover_after_a_crash_retries_the_payment_exactly_once(api, env, settings,
                                                                         org):
    """A handler that died leaves its claim, maybe its change of our record, maybe its retry:
    the delivery that takes the event over (its lease has run out) owes the retry the dead one
    may not have delivered, and delivers it under the same update id, so Temporal acts once.
    The new cards decline, so every retry that reaches the workflow is one more charge attempt
    and the subscription stays past_due: a lost retry and a doubled one both show."""
    customer, sub = await declining_subscription(api, org)
    await sleep_past_period_end(env, sub, timedelta(hours=1))
    engine = get_engine(settings.database_url)

    def attempts() -> int:
        with Session(engine) as session:
            return len(session.exec(select(ChargeAttempt).where(
                ChargeAttempt.subscription_id == sub["id"])).all())

    async def past_due():
        r = await api.get(f"/v1/subscriptions/{sub['id']}", headers=org.member)
        return r.json()["status"] == "past_due"

    await settle(past_due)
    at_stripe = Stripe(settings)
    expired = utcnow() - 2 * timedelta(seconds=settings.stripe.webhook_lease_seconds)

    async def died_holding(evt, pm: str, *, retry_sent: bool) -> None:
        """What a handler killed at that point leaves behind (its own code, then nothing)."""
        webhook_store.claim(engine, evt["id"], evt["type"], dt("2030-01-01T00:00:00Z"),
                            lease=timedelta(seconds=1), now=expired)
        assert webhook_customers.adopt_default(engine, customer["id"], pm, evt["id"])
        if retry_sent:
            actor = Actor(kind="customer", id=customer["id"])
            await retry_dunning(env.client, engine, get_customer(engine, customer["id"]), pm,
                                actor, update_id=retry_update_id(evt["id"], pm))

    # Died between recording the new default and delivering the retry.
    before = attempts()
    first_pm = at_stripe.attach(customer["id"], CARD_DECLINED)
    first = event("customer.updated", at_stripe.customer(customer["id"]))
    await died_holding(first, first_pm, retry_sent=False)
    r = await deliver(api, settings, first)
    assert r.status_code == 200 and r.json()["retried_subscriptions"] == [sub["id"]], r.text
    assert attempts() == before + 1 and await past_due()

    # Died after delivering the retry, before finishing the event.
    second_pm = at_stripe.attach(customer["id"], CARD_DECLINED)
    second = event("customer.updated", at_stripe.customer(customer["id"]))
    await died_holding(second, second_pm, retry_sent=True)
    assert attempts() == before + 2
    r = await deliver(api, settings, second)
    assert r.status_code == 200 and r.json()["retried_subscriptions"] == [sub["id"]], r.text
    assert attempts() == before + 2 and await past_due()
    assert (await deliver(api, settings, second)).json()["duplicate"] is True
    assert webhook_store.get(engine, second["id"]).attempts == 2


def _signed_envelopes(stripe_customer_id: str) -> list[dict[str, Any]]:
    """Arbitrary JSON in every part of a correctly signed event (Hypothesis generates, the
    async test sends: signed payloads never reach the schemathesis fuzzer)."""
    from hypothesis import given, settings as hsettings, strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                               | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                               max_leaves=8)
    ids = st.sampled_from([stripe_customer_id, "cus_unknown", "pm_x"]) | json_values
    objects = st.fixed_dictionaries({}, optional={"id": ids, "customer": ids,
                                                  "invoice_settings": json_values})
    envelopes = st.fixed_dictionaries({
        "id": st.text(min_size=1, max_size=20).map(lambda s: f"evt_{s}"),
        "type": st.sampled_from(["customer.updated", "payment_method.attached"]) | st.text(),
        "created": st.integers(min_value=0, max_value=2**31),
        "data": st.fixed_dictionaries({"object": objects}) | json_values,
    }, optional={"livemode": json_values})
    found: list[dict[str, Any]] = []

    @given(envelopes)
    @hsettings(max_examples=60, database=None, derandomize=True, deadline=None)
    def collect(envelope):
        found.append(envelope)

    collect()
    return found


async def test_no_signed_payload_makes_the_endpoint_fail(http, settings, org):
    customer = await create_customer(http, org)
    stripe_id = Stripe(settings).stripe_id(customer["id"])
    statuses = set()
    for envelope in _signed_envelopes(stripe_id):
        r = await deliver(http, settings, envelope)
        assert r.status_code in (200, 422), (envelope, r.text)
        statuses.add(r.status_code)
    assert statuses == {200, 422}
