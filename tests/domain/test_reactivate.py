"""Reactivation before the end (D3, D11) and refusal after it (D4)."""

from __future__ import annotations

import pytest

from domain import lifecycle
from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import ENDED_MESSAGE, next_wakeup
from domain.model import Actor, Status
from domain.requests import Cancel, Reactivate
from tests.domain.helpers import SECOND, Driver, at, kinds

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)
NEXT_END = at(2024, 3, 31, 12)
MID = at(2024, 2, 14, 12)
OWNER = Actor(kind="customer", id="usr_owner")


def non_renewing() -> Driver:
    d = Driver.create(T0)
    d.request(Cancel(mode="at_period_end"), MID)
    return d


# One second before the end: D3 -----------------------------------------------------------------


def test_reactivate_one_second_before_the_end_restores_active_with_no_charge():
    d = non_renewing()
    mark = d.mark
    d.request(Reactivate(requested_by=OWNER), END - SECOND)
    s = d.state
    assert s.status == Status.ACTIVE
    assert s.current_period_end == END  # renews on the same date
    assert s.cancel_at is None and s.cancel_at_period_end is False
    assert s.canceled_at is None and s.cancellation is None
    assert s.renewal_line == f"Renewing on {END.isoformat()}"
    assert next_wakeup(s) == END
    cmds = d.since(mark)
    assert kinds(cmds) == ["customer.subscription.updated"]  # no Charge now (D3)
    event = cmds[0].event
    assert event.request == OWNER
    assert event.previous_attributes == {
        "status": "non_renewing", "cancel_at": END.isoformat(), "cancel_at_period_end": True,
        "canceled_at": MID.isoformat(),
        "cancellation_details": {"mode": "at_period_end", "reason": "cancellation_requested",
                                 "feedback": None, "comment": None,
                                 "requested_by": {"kind": "customer", "id": None},
                                 "refund": "none"}}


def test_after_reactivation_the_subscription_renews_with_a_charge_at_the_same_date():
    d = non_renewing()
    d.request(Reactivate(), END - SECOND)
    d.advance(END)
    assert [c.idempotency_key for c in d.charges] == ["sub_1:20240131T120000Z:1",
                                                      "sub_1:20240229T120000Z:1"]
    assert d.state.status == Status.ACTIVE and d.state.current_period_end == NEXT_END


def test_validate_reactivate_one_second_before_the_end_accepts():
    d = non_renewing()
    assert lifecycle.validate(d.state, Reactivate(), END - SECOND) is None


# Exactly at the end: D4 --------------------------------------------------------------------------


def test_reactivate_exactly_at_the_end_is_refused_after_advance():
    d = non_renewing()
    d.advance(END)
    ended = d.state
    assert ended.status == Status.CANCELED
    with pytest.raises(RequestRefused) as err:
        d.request(Reactivate(), END)
    assert not isinstance(err.value, RequestInvalid)
    assert err.value.code == "subscription_ended"
    assert err.value.message == (
        "ended subscriptions cannot be reactivated; create a new subscription")
    assert str(err.value) == ENDED_MESSAGE
    assert err.value.http_status == 409
    assert d.state == ended


def test_validate_reactivate_exactly_at_the_end_is_refused_from_the_earlier_state():
    d = non_renewing()
    before = d.state
    with pytest.raises(RequestRefused) as err:
        lifecycle.validate(before, Reactivate(), END)
    assert err.value.code == "subscription_ended" and err.value.message == ENDED_MESSAGE
    assert d.state == before  # validate changes nothing


def test_handle_requires_the_state_advanced_to_now():
    d = non_renewing()
    with pytest.raises(RuntimeError, match="advance the state"):
        lifecycle.handle(d.state, Reactivate(), END)


def test_reactivate_after_an_immediate_cancel_is_refused():
    d = Driver.create(T0)
    d.request(Cancel(mode="immediately"), MID)
    with pytest.raises(RequestRefused) as err:
        d.request(Reactivate(), MID + SECOND)
    assert err.value.message == ENDED_MESSAGE
    with pytest.raises(RequestRefused, match="create a new subscription"):
        d.validate(Reactivate(), MID + SECOND)


# Other reactivations ------------------------------------------------------------------------------


def test_reactivate_with_nothing_scheduled_is_refused():
    d = Driver.create(T0)
    before = d.state
    with pytest.raises(RequestRefused) as err:
        d.request(Reactivate(), MID)
    assert err.value.code == "nothing_to_reactivate"
    assert "active" in err.value.message
    assert d.state == before


def test_reactivate_undoes_a_cancel_at_a_date_inside_the_period():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 2, 20)), MID)
    d.request(Reactivate(), at(2024, 2, 19))
    assert d.state.status == Status.ACTIVE and d.state.current_period_end == END
    d.advance(at(2024, 2, 21))
    assert d.state.status == Status.ACTIVE


def test_reactivate_undoes_a_cancel_at_a_date_beyond_the_period():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 4, 15)), MID)
    d.advance(at(2024, 3, 1))
    d.request(Reactivate(), at(2024, 3, 1))
    assert d.state.status == Status.ACTIVE and d.state.cancel_at is None
    d.advance(at(2024, 5, 1))
    assert d.state.status == Status.ACTIVE
    assert len(d.charges) == 4


def test_reactivation_then_cancel_again():
    d = non_renewing()
    d.request(Reactivate(), END - 2 * SECOND)
    d.request(Cancel(mode="at_period_end"), END - SECOND)
    d.advance(END)
    assert d.state.status == Status.CANCELED and len(d.charges) == 1
