"""Postponing a scheduled cancellation (D5, "change term end") and reactivating after it."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import next_wakeup
from domain.model import Status
from domain.requests import Cancel, Postpone, Reactivate
from tests.domain.helpers import SECOND, Driver, GrantCredits, at, kinds

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)  # paid-through date of the first period
MID = at(2024, 2, 14, 12)


def non_renewing() -> Driver:
    d = Driver.create(T0)
    d.request(Cancel(mode="at_period_end"), MID)
    return d


def extended(until: datetime) -> Driver:
    """Cancelled at period end, postponed past the paid-through date, now in the extension."""
    d = non_renewing()
    d.request(Postpone(cancel_at=until), MID + SECOND)
    d.advance(END)
    assert d.state.in_extension
    return d


# Inside the paid term ---------------------------------------------------------------------------


@pytest.mark.parametrize("new_end", [at(2024, 2, 20), at(2024, 2, 29, 11, 59, 59)])
def test_postpone_inside_the_term_moves_the_end(new_end):
    d = non_renewing()
    mark = d.mark
    d.request(Postpone(cancel_at=new_end), MID + SECOND)
    s = d.state
    assert s.status == Status.NON_RENEWING
    assert s.cancel_at == new_end and s.cancel_at_period_end is False
    assert s.current_period_end == END
    (cmd,) = d.since(mark)
    assert cmd.event.previous_attributes == {"cancel_at": END.isoformat(),
                                             "cancel_at_period_end": True}
    d.advance(new_end)
    assert d.state.status == Status.CANCELED and d.state.ended_at == new_end
    assert len(d.charges) == 1


def test_postpone_a_date_cancellation_to_the_period_end_sets_cancel_at_period_end():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 2, 20)), MID)
    d.request(Postpone(cancel_at=END), MID + SECOND)
    assert d.state.cancel_at_period_end is True
    d.advance(END)
    assert d.state.status == Status.CANCELED and len(d.charges) == 1


# Beyond the paid-through date: the unpaid extension ---------------------------------------------


def test_postpone_beyond_the_paid_through_date_rolls_into_an_uncharged_extension():
    new_end = at(2024, 3, 15)
    d = non_renewing()
    d.request(Postpone(cancel_at=new_end), MID + SECOND)
    s = d.state
    assert s.status == Status.NON_RENEWING
    assert s.cancel_at == new_end and s.cancel_at_period_end is False
    assert s.renewal_line == f"Cancelling on {new_end.isoformat()}"
    assert next_wakeup(s) == END
    mark = d.mark
    d.advance(END)
    cmds = d.since(mark)
    assert kinds(cmds) == ["forfeit_credits", "customer.subscription.updated"]  # no Charge
    assert cmds[0].period_key == "20240131T120000Z"
    event = cmds[1].event
    assert event.request is None
    assert event.previous_attributes == {"current_period_start": T0.isoformat(),
                                         "current_period_end": END.isoformat()}
    s = d.state
    assert s.status == Status.NON_RENEWING and s.in_extension
    assert (s.current_period_start, s.current_period_end) == (END, new_end)
    assert s.current_period_paid == 0 and s.current_period_payment_intent is None
    assert s.has_access(at(2024, 3, 14))
    assert next_wakeup(s) == new_end
    mark = d.mark
    d.advance(new_end)
    assert kinds(d.since(mark)) == ["collect_pending_charges", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]
    assert d.state.status == Status.CANCELED and d.state.ended_at == new_end
    assert len(d.charges) == 1  # D5: nothing collected for the extension
    assert len(d.of(GrantCredits)) == 1  # and no new subscription credits


def test_postpone_months_beyond_never_charges_at_the_anchor_dates():
    new_end = at(2024, 6, 10)
    d = non_renewing()
    d.request(Postpone(cancel_at=new_end), MID + SECOND)
    for instant in (END, at(2024, 3, 31, 12), at(2024, 4, 30, 12), at(2024, 5, 31, 12)):
        d.advance(instant)
        assert d.state.status == Status.NON_RENEWING
    d.advance(new_end)
    assert d.state.status == Status.CANCELED
    assert len(d.charges) == 1


def test_postpone_again_during_the_extension():
    d = extended(at(2024, 3, 15))
    d.request(Postpone(cancel_at=at(2024, 4, 20)), at(2024, 3, 10))
    s = d.state
    assert s.cancel_at == s.current_period_end == at(2024, 4, 20)
    assert s.status == Status.NON_RENEWING and s.cancel_at_period_end is False
    d.advance(at(2024, 4, 20))
    assert d.state.status == Status.CANCELED and len(d.charges) == 1


def test_postpone_earlier_during_the_extension():
    d = extended(at(2024, 3, 15))
    d.request(Postpone(cancel_at=at(2024, 3, 5)), at(2024, 3, 1))
    assert d.state.current_period_end == at(2024, 3, 5)
    d.advance(at(2024, 3, 5))
    assert d.state.status == Status.CANCELED


def test_postpone_into_the_past_during_the_extension_is_invalid():
    d = extended(at(2024, 3, 15))
    before = d.state
    with pytest.raises(RequestInvalid) as err:
        d.request(Postpone(cancel_at=END), at(2024, 3, 1))  # the paid-through date
    assert err.value.field == "cancel_at"
    assert err.value.code == "cancel_at_not_in_future"
    assert d.state == before


def test_cancel_at_a_date_beyond_the_extension_is_refused():
    d = extended(at(2024, 3, 15))
    before = d.state
    with pytest.raises(RequestRefused) as err:
        d.request(Cancel(mode="at_date", cancel_at=at(2024, 4, 1)), at(2024, 3, 1))
    assert err.value.code == "in_extension" and err.value.field == "cancel_at"
    assert d.state == before


def test_cancel_at_a_date_inside_the_extension_brings_the_end_forward():
    d = extended(at(2024, 3, 15))
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 5)), at(2024, 3, 1))
    assert d.state.status == Status.NON_RENEWING and d.state.cancel_at_period_end is False
    d.advance(at(2024, 3, 5))
    assert d.state.status == Status.CANCELED and d.state.ended_at == at(2024, 3, 5)


def test_cancel_immediately_during_the_extension_refunds_nothing():
    d = extended(at(2024, 3, 15))
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="full"), at(2024, 3, 1))
    assert "refund" not in kinds(d.since(mark))
    assert d.state.status == Status.CANCELED


# Postpone, then reactivate ------------------------------------------------------------------------


def test_postpone_then_reactivate_inside_the_term_renews_at_the_anchor():
    d = non_renewing()
    d.request(Postpone(cancel_at=at(2024, 3, 15)), MID + SECOND)
    mark = d.mark
    d.request(Reactivate(), at(2024, 2, 20))
    assert kinds(d.since(mark)) == ["customer.subscription.updated"]
    s = d.state
    assert s.status == Status.ACTIVE and s.current_period_end == END and s.cancel_at is None
    d.advance(END)
    assert [c.period_key for c in d.charges] == ["20240131T120000Z", "20240229T120000Z"]


def test_postpone_then_reactivate_during_the_extension_renews_at_the_next_anchor_boundary():
    d = extended(at(2024, 4, 15))
    mark = d.mark
    d.request(Reactivate(), at(2024, 3, 10))
    assert kinds(d.since(mark)) == ["customer.subscription.updated"]  # no charge now
    s = d.state
    assert s.status == Status.ACTIVE and not s.in_extension
    assert s.cancel_at is None and s.cancellation is None
    assert s.current_period_end == at(2024, 3, 31, 12)  # the next anchor date
    assert s.renewal_line == f"Renewing on {at(2024, 3, 31, 12).isoformat()}"
    assert d.events[-1].previous_attributes["current_period_end"] == at(2024, 4, 15).isoformat()
    d.advance(at(2024, 3, 31, 12))
    assert [c.period_key for c in d.charges] == ["20240131T120000Z", "20240331T120000Z"]
    charge = d.charges[-1]
    assert charge.purpose == "renewal" and charge.attempt == 1
    assert d.state.current_period_start == at(2024, 3, 31, 12)
    assert d.state.current_period_end == at(2024, 4, 30, 12)
    assert d.of(GrantCredits)[-1].period_key == "20240331T120000Z"


def test_reactivate_late_in_a_long_extension_uses_the_anchor_period_containing_now():
    d = extended(at(2024, 6, 15))
    d.request(Reactivate(), at(2024, 5, 2))
    assert d.state.current_period_end == at(2024, 5, 31, 12)
    d.advance(at(2024, 5, 31, 12))
    assert d.charges[-1].period_key == "20240531T120000Z"
    assert len(d.charges) == 2


def test_reactivate_during_the_extension_exactly_at_an_anchor_boundary():
    d = extended(at(2024, 4, 15))
    d.advance(at(2024, 3, 31, 12))
    d.request(Reactivate(), at(2024, 3, 31, 12))
    assert d.state.current_period_end == at(2024, 4, 30, 12)
    assert len(d.charges) == 1


# Refusals -----------------------------------------------------------------------------------------


def test_postpone_with_nothing_scheduled_is_refused():
    d = Driver.create(T0)
    with pytest.raises(RequestRefused) as err:
        d.request(Postpone(cancel_at=at(2024, 3, 15)), MID)
    assert err.value.code == "nothing_to_postpone"
    assert not isinstance(err.value, RequestInvalid)


@pytest.mark.parametrize("cancel_at", [MID, MID - SECOND])
def test_postpone_to_now_or_the_past_is_invalid(cancel_at):
    d = non_renewing()
    before = d.state
    with pytest.raises(RequestInvalid) as err:
        d.request(Postpone(cancel_at=cancel_at), MID)
    assert err.value.field == "cancel_at" and err.value.code == "cancel_at_not_in_future"
    assert d.state == before


def test_postpone_needs_an_aware_cancel_at():
    with pytest.raises(ValidationError, match="timezone-aware"):
        Postpone(cancel_at=datetime(2024, 3, 1))


def test_postpone_after_the_end_is_refused():
    d = non_renewing()
    d.advance(END)
    with pytest.raises(RequestRefused) as err:
        d.request(Postpone(cancel_at=at(2024, 4, 1)), END)
    assert err.value.code == "subscription_ended"


# Postpone keeps charged renewals and uncharged trials (D5, lifecycle.md) -----------------------


def test_postponing_a_date_cancellation_beyond_the_term_keeps_renewals_charged():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 4, 15)), MID)
    d.request(Postpone(cancel_at=at(2024, 4, 16)), MID + SECOND)
    assert d.state.status == Status.ACTIVE
    d.advance(at(2024, 4, 16))
    assert [c.period_key[:8] for c in d.charges] == ["20240131", "20240229", "20240331"]


def test_postponing_a_trial_cancellation_beyond_the_trial_end_collects_nothing():
    trial_end = at(2024, 2, 14)
    d = Driver.create(T0, trial_end=trial_end)
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 1))
    d.request(Postpone(cancel_at=at(2024, 3, 1)), at(2024, 2, 2))
    d.advance(at(2024, 3, 1))
    assert d.charges == []
    assert d.state.status == Status.CANCELED and d.state.ended_at == at(2024, 3, 1)


def test_reactivating_a_postponed_trial_cancellation_restores_the_trial():
    trial_end = at(2024, 2, 14)
    d = Driver.create(T0, trial_end=trial_end)
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 1))
    d.request(Postpone(cancel_at=at(2024, 3, 1)), at(2024, 2, 2))
    assert d.state.status == Status.NON_RENEWING
    d.request(Reactivate(), at(2024, 2, 3))
    assert d.state.status == Status.TRIALING and d.state.cancel_at is None
    d.advance(trial_end)
    assert [c.purpose for c in d.charges] == ["first_period"]
    assert d.state.status == Status.ACTIVE


def test_cancelling_again_inside_a_postponed_trial_keeps_it_a_trial():
    trial_end = at(2024, 2, 14)
    d = Driver.create(T0, trial_end=trial_end)
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 1))
    d.request(Postpone(cancel_at=at(2024, 3, 1)), at(2024, 2, 2))
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 3))
    assert d.state.status == Status.TRIALING and d.state.cancel_at == trial_end
    d.advance(trial_end)
    assert d.charges == [] and d.state.status == Status.CANCELED


def test_postponing_a_trial_cancellation_inside_the_trial_keeps_trialing():
    trial_end = at(2024, 2, 14)
    d = Driver.create(T0, trial_end=trial_end)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 2, 10)), at(2024, 2, 1))
    d.request(Postpone(cancel_at=at(2024, 2, 12)), at(2024, 2, 2))
    assert d.state.status == Status.TRIALING
