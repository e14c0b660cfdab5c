"""Rule versions: a subscription runs under the rules it was created with (or upgraded to at
a safe point), so a rule change never alters the commands of a history already recorded.
Version 1 is the oldest (states carried without a version); version 2 skips, in a late
recovery from dunning, the periods that ended without access."""

from __future__ import annotations

import pytest

from domain import lifecycle
from domain.model import BillingPolicy, Status
from domain.requests import PaymentMethodUpdated
from tests.domain.helpers import DECLINE, Driver, at

T0 = at(2024, 1, 31, 12)
RENEWAL = at(2024, 2, 29, 12)
RETRY4 = at(2024, 3, 15, 12)
UNPAID = BillingPolicy(final_action="unpaid")


def unpaid_since_february(rules: int) -> Driver:
    d = Driver.create(T0, policy=UNPAID, rules=rules)
    d.script(DECLINE, DECLINE, DECLINE, DECLINE)
    d.advance(RETRY4)
    assert d.state.status == Status.UNPAID and d.state.rules == rules
    return d


def test_version_1_charges_every_missed_period_back_to_back():
    d = unpaid_since_february(rules=1)
    n = len(d.charges)
    d.request(PaymentMethodUpdated(), at(2024, 6, 10))  # Mar, Apr, May ended meanwhile
    assert [c.period_key for c in d.charges[n:]] == [
        "20240229T120000Z", "20240331T120000Z", "20240430T120000Z", "20240531T120000Z"]
    assert d.state.status == Status.ACTIVE


def test_version_2_charges_the_current_period_once():
    d = unpaid_since_february(rules=2)
    n = len(d.charges)
    d.request(PaymentMethodUpdated(), at(2024, 6, 10))
    assert [c.period_key for c in d.charges[n:]] == ["20240229T120000Z", "20240531T120000Z"]
    assert d.state.status == Status.ACTIVE


def test_new_subscriptions_start_on_the_current_rules_and_old_states_are_version_1():
    assert lifecycle.CURRENT_RULES == max(lifecycle.RULES) == 4
    assert Driver.create(T0).state.rules == lifecycle.CURRENT_RULES
    carried = Driver.create(T0).state.model_dump(mode="json")
    del carried["rules"]  # a state recorded before versions existed
    old = type(Driver.create(T0).state).model_validate(carried)
    assert old.rules == 1
    assert lifecycle.rules_upgradable(old)
    assert lifecycle.upgrade_rules(old).rules == lifecycle.CURRENT_RULES
    assert not lifecycle.rules_upgradable(lifecycle.upgrade_rules(old))


def test_no_upgrade_in_the_middle_of_dunning():
    d = Driver.create(T0, rules=1).script(DECLINE)
    d.advance(RENEWAL)
    assert d.state.status == Status.PAST_DUE and not lifecycle.rules_upgradable(d.state)
    with pytest.raises(AssertionError):
        lifecycle.upgrade_rules(d.state)
    with pytest.raises(ValueError):
        Driver.create(T0, rules=5)
