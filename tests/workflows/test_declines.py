"""Decline-aware dunning (rule version 3, D9) on the real worker: time-skipping server,
localstripe behind the fault proxy, the event store and the email outbox.

- a hard decline (``lost_card``: localstripe has no card for it, so the proxy answers the
  confirm with Stripe's card error) is never retried: past_due waiting for a new payment
  method, cancelled at the grace end, with ``invoice.payment_failed`` and the
  ``payment_method_required`` and ``auto_cancel`` emails;
- a soft decline (localstripe's 4000000000000341: ``card_declined``) follows the schedule;
- a card that needs 3-D Secure (localstripe's 4000002500003155: the confirm answers
  ``requires_action``) asks the customer to act (``invoice.payment_action_required``, the
  ``payment_action_required`` email), and a new card retries at once as in any dunning.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from accounts.customers import create_customer
from accounts.models import Organization
from domain.model import Status, SubscriptionState
from domain.requests import PaymentMethodUpdated
from notifications import outbox
from store.engine import session_scope
from tests.fakes_stripe import CARD_DECLINED, CARD_OK
from tests.faults.stripe_proxy import Fault
from tests.workflows.proxied import proxy, settings  # noqa: F401
from tests.workflows.scenario import Scenario

pytestmark = pytest.mark.temporal

SECOND, DAY = timedelta(seconds=1), timedelta(days=1)
CARD_3DS = "4000002500003155"  # localstripe: every confirm needs authentication
LOST_CARD = {"type": "card_error", "code": "card_declined", "decline_code": "lost_card",
             "message": "Your card has been declined."}


def _customer(scenario: Scenario) -> str:
    """A customer with an address, so that the events queue their emails."""
    customer_id = scenario.customer(CARD_OK)
    with session_scope(scenario.engine) as session:
        session.add(Organization(id=f"org_{customer_id}", name="Decline tests"))
    create_customer(scenario.engine, f"org_{customer_id}", f"{customer_id}@example.com", "Ada",
                    customer_id=customer_id)
    return customer_id


def _emails(scenario: Scenario) -> list[str]:
    """The dunning emails (each paid period's receipt is tests/invoices' subject)."""
    return [m.kind for m in outbox.list_messages(scenario.engine,
                                                 subscription_id=scenario.sub_id)
            if m.channel == "email" and m.kind != "payment_receipt"]


async def _declined_renewal(scenario: Scenario, end: datetime) -> SubscriptionState:
    """Sleep past the period ``end``: the renewal's charge declines; the past_due state once
    the charge is settled."""
    await scenario.sleep_until(end + SECOND)
    return await scenario.until(lambda s: s.status == Status.PAST_DUE
                                and s.awaiting_charge is None)


def _types(scenario: Scenario) -> list[str]:
    return [e.type for e in scenario.events()]


async def test_a_hard_decline_is_never_retried_and_ends_at_the_grace_end(scenario, proxy):
    first = await scenario.start(customer_id=_customer(scenario))
    assert first.rules >= 3  # decline-aware dunning is rule version 3 and every later one
    end = first.current_period_end
    proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=402,
                       path_suffix="/confirm", error=LOST_CARD))
    waiting = await _declined_renewal(scenario, end)
    dunning = waiting.dunning
    assert (dunning.requires, dunning.last_decline_code, dunning.next_retry_at) == (
        "payment_method", "lost_card", None)
    assert dunning.ends_at == dunning.grace_until == end + 5 * DAY
    assert waiting.has_access(await scenario.now())
    assert _emails(scenario) == ["payment_method_required"]

    await scenario.sleep_until(end + 4 * DAY)  # past the soft schedule's first retry (3 d)
    still = await scenario.until(lambda s: s.status == Status.PAST_DUE)
    assert still.dunning == dunning and len(scenario.charges()) == 2

    await scenario.sleep_until(end + 5 * DAY + SECOND)
    final = await scenario.finished()
    assert final.status == Status.CANCELED and final.ended_at == end + 5 * DAY
    assert final.cancellation.reason == "payment_failed"
    assert [(c.status, c.decline_code) for c in scenario.charges()] == [
        ("succeeded", None), ("declined", "lost_card")]
    assert [pi["status"] for pi in scenario.stripe_intents()
            if pi["status"] != "succeeded"] == ["canceled"]  # closed at the end (D6)
    types = _types(scenario)
    assert types.count("invoice.payment_failed") == 1
    assert "invoice.payment_action_required" not in types
    assert types[-1] == "customer.subscription.deleted"
    assert sorted(_emails(scenario)) == ["auto_cancel", "payment_method_required"]


async def test_a_soft_decline_follows_the_schedule(scenario):
    first = await scenario.start(customer_id=_customer(scenario))
    end = first.current_period_end
    scenario.payments.add_test_card(first.customer_id, CARD_DECLINED)
    past_due = await _declined_renewal(scenario, end)
    dunning = past_due.dunning
    assert (dunning.requires, dunning.ends_at, dunning.last_decline_code) == (
        None, None, "card_declined")
    assert end + 3 * DAY <= dunning.next_retry_at < end + 3 * DAY + 10 * SECOND
    await scenario.sleep_until(dunning.next_retry_at + SECOND)
    second = await scenario.until(lambda s: s.dunning is not None and s.dunning.attempts == 2
                                  and s.awaiting_charge is None)
    assert second.dunning.next_retry_at is not None and second.dunning.requires is None
    assert [c.status for c in scenario.charges()] == ["succeeded", "declined", "declined"]
    assert _types(scenario).count("invoice.payment_failed") == 2
    assert _emails(scenario) == ["payment_failed", "payment_failed"]


async def test_authentication_asks_the_customer_and_a_new_card_pays_at_once(scenario):
    first = await scenario.start(customer_id=_customer(scenario))
    end = first.current_period_end
    scenario.payments.add_test_card(first.customer_id, CARD_3DS)
    waiting = await _declined_renewal(scenario, end)
    assert (waiting.dunning.requires, waiting.dunning.last_decline_code,
            waiting.dunning.next_retry_at) == ("authentication", "authentication_required", None)
    types = _types(scenario)
    assert "invoice.payment_action_required" in types and "invoice.payment_failed" not in types
    assert _emails(scenario) == ["payment_action_required"]

    await scenario.sleep_until(end + 4 * DAY)
    assert len(scenario.charges()) == 2  # no blind retry

    record = scenario.payments.add_test_card(first.customer_id, CARD_OK)
    active = await scenario.send(PaymentMethodUpdated(
        payment_method_id=record.default_payment_method))
    assert active.status == Status.ACTIVE and active.dunning is None
    assert active.current_period_start == end
    assert [c.status for c in scenario.charges()] == ["succeeded", "declined", "succeeded"]
