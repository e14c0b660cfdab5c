"""D13/D18: who is on the free plan (and gets the free daily allowance)."""

from __future__ import annotations

import pytest

from domain.credits import on_free_plan
from domain.model import Status


@pytest.mark.parametrize("status", list(Status))
def test_a_paid_subscription_keeps_the_customer_off_the_free_plan_until_it_is_over(status):
    over = status in (Status.CANCELED, Status.UNPAID)
    assert on_free_plan([(status, False)]) is over
    assert on_free_plan([(status, True)]) is True  # the free plan itself


def test_no_subscription_or_only_ended_ones_is_the_free_plan():
    assert on_free_plan([])
    assert on_free_plan([("canceled", False), ("active", True)])
    assert not on_free_plan([("canceled", False), ("incomplete", False)])  # still starting
