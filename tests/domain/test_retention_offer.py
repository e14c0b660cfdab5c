"""D14: the retention step's offer (a discount on the next N periods), accepted instead of
cancelling. Charges before the offer stay at the plan price; retries of a discounted period
charge the discounted amount; once per subscription."""

from __future__ import annotations

import pytest

from domain.errors import RequestRefused
from domain.model import BillingPolicy, RetentionOffer, Status
from domain.requests import AcceptRetentionOffer, Cancel
from tests.domain.helpers import CUSTOMER, DECLINE, OK, PRO, Driver, at

OFFER = RetentionOffer(percent_off=25, periods=2)
POLICY = BillingPolicy(retention_offer=OFFER)
ACCEPT = AcceptRetentionOffer(requested_by=CUSTOMER)


def test_accepting_instead_of_cancelling_discounts_the_next_periods_only():
    d = Driver.create(at(2025, 1, 31), policy=POLICY)
    d.request(Cancel(mode="at_period_end", requested_by=CUSTOMER), at(2025, 2, 10))
    assert d.state.status == Status.NON_RENEWING
    decision = d.request(ACCEPT, at(2025, 2, 11))
    assert d.state.status == Status.ACTIVE and d.state.cancel_at is None
    assert d.state.current_period_end == at(2025, 2, 28)  # same anchor, nothing charged now
    assert decision.commands and all(c.kind == "emit" for c in decision.commands)
    assert decision.commands[-1].event.data["discount"] == {"percent_off": 25,
                                                            "periods_left": 2}
    d.advance(at(2025, 5, 1))
    assert [c.amount for c in d.charges] == [3000, 2250, 2250, 3000]
    assert d.state.discount is None


def test_a_declined_discounted_period_is_retried_at_the_discounted_price():
    d = Driver.create(at(2025, 1, 1), policy=POLICY)
    d.request(ACCEPT, at(2025, 1, 2))
    d.script(DECLINE, OK)
    d.advance(at(2025, 2, 5))
    assert [c.amount for c in d.charges] == [3000, 2250, 2250]
    assert d.state.status == Status.ACTIVE


def test_refused_without_an_offer_twice_or_outside_a_paid_renewing_term():
    d = Driver.create(at(2025, 1, 1))
    with pytest.raises(RequestRefused) as no_offer:
        d.request(ACCEPT, at(2025, 1, 2))
    assert no_offer.value.code == "no_retention_offer"

    d = Driver.create(at(2025, 1, 1), policy=POLICY)
    d.request(ACCEPT, at(2025, 1, 2))
    before = d.state
    with pytest.raises(RequestRefused) as twice:
        d.request(ACCEPT, at(2025, 1, 3))
    assert twice.value.code == "retention_offer_used" and d.state == before

    d = Driver.create(at(2025, 1, 1), policy=POLICY, outcomes=[OK, DECLINE])
    d.advance(at(2025, 2, 1, 1))
    assert d.state.status == Status.PAST_DUE
    with pytest.raises(RequestRefused) as past_due:
        d.request(ACCEPT, at(2025, 2, 1, 2))
    assert past_due.value.code == "not_eligible"

    d = Driver.create(at(2025, 1, 1), policy=POLICY)
    d.request(Cancel(mode="immediately", requested_by=CUSTOMER), at(2025, 1, 2))
    with pytest.raises(RequestRefused) as ended:
        d.request(ACCEPT, at(2025, 1, 3))
    assert ended.value.code == "subscription_ended"


def test_the_offer_price_rounds_in_the_customers_favour():
    assert RetentionOffer(percent_off=33, periods=1).price(999) == 669
    assert RetentionOffer(percent_off=100, periods=1).price(PRO.amount) == 0
