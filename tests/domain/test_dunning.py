"""Dunning (D9): retries at the policy delays, grace, final action, new payment method."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import RequestRefused
from domain.lifecycle import next_wakeup
from domain.model import Actor, BillingPolicy, Status
from domain.requests import Cancel, PaymentMethodUpdated, Postpone, Reactivate
from tests.domain.helpers import (
    DECLINE,
    OK,
    SECOND,
    Charge,
    Driver,
    GrantCredits,
    at,
    kinds,
)

T0 = at(2024, 1, 31, 12)
RENEWAL = at(2024, 2, 29, 12)
NEXT_END = at(2024, 3, 31, 12)
RETRY2, RETRY3, RETRY4 = at(2024, 3, 3, 12), at(2024, 3, 8, 12), at(2024, 3, 15, 12)
GRACE_UNTIL = at(2024, 3, 5, 12)  # 5 days after the period start
UNPAID_POLICY = BillingPolicy(final_action="unpaid")


def past_due(*more: str, policy: BillingPolicy | None = None) -> Driver:
    """Active, then the Feb 29 renewal is declined."""
    d = Driver.create(T0, policy=policy)
    d.script(DECLINE, *more)
    d.advance(RENEWAL)
    return d


def test_declined_renewal_moves_to_past_due_with_grace():
    d = Driver.create(T0).script(DECLINE)
    mark = d.mark
    d.advance(RENEWAL)
    assert kinds(d.since(mark)) == ["forfeit_credits", "charge", "invoice.payment_failed",
                                    "customer.subscription.updated"]
    s = d.state
    assert s.status == Status.PAST_DUE
    assert s.awaiting_charge is None
    assert (s.current_period_start, s.current_period_end) == (RENEWAL, NEXT_END)
    assert s.current_period_paid == 0
    dn = s.dunning
    assert (dn.period_key, dn.attempts, dn.next_retry_at, dn.grace_until,
            dn.last_decline_code) == ("20240229T120000Z", 1, RETRY2, GRACE_UNTIL,
                                      "card_declined")
    failed, updated = d.events[-2:]
    assert failed.request is None and updated.request is None
    assert failed.previous_attributes == {"attempt": 1, "decline_code": "card_declined"}
    assert updated.previous_attributes == {"status": "active"}
    assert next_wakeup(s) == RETRY2
    assert s.renewal_line == f"Renewing on {NEXT_END.isoformat()}"
    assert d.of(GrantCredits)[-1].period_key == "20240131T120000Z"  # none for the unpaid one


def test_access_during_the_grace_period_only():
    s = past_due().state
    assert s.has_access(RENEWAL)
    assert s.has_access(GRACE_UNTIL - SECOND)
    assert not s.has_access(GRACE_UNTIL)


def test_retries_happen_at_the_policy_delays_then_cancel_after_four_failures():
    d = past_due(DECLINE, DECLINE, DECLINE)
    d.advance(RETRY2 - SECOND)
    assert len(d.charges) == 2  # no retry before its time
    d.advance(at(2024, 4, 30))
    charges = d.charges[1:]
    assert [c.idempotency_key for c in charges] == [f"sub_1:20240229T120000Z:{n}"
                                                    for n in (1, 2, 3, 4)]
    assert [c.attempt for c in charges] == [1, 2, 3, 4]
    assert all(c.purpose == "renewal" and c.amount == 3000 for c in charges)
    retry_times = [s.now for s in d.steps if s.label == "advance"
                   and any(isinstance(c, Charge) for c in s.commands)]
    assert retry_times == [RENEWAL, RETRY2, RETRY3, RETRY4]
    s = d.state
    assert s.status == Status.CANCELED
    assert s.ended_at == RETRY4 and s.canceled_at == RETRY4
    assert s.cancellation.reason == "payment_failed"
    assert s.cancellation.mode == "immediately"
    assert s.cancellation.requested_by == Actor(kind="system", id=None)
    assert s.dunning is None
    deleted = d.events[-1]
    assert deleted.type == "customer.subscription.deleted"
    assert deleted.request is None
    assert deleted.data["cancellation_details"]["reason"] == "payment_failed"
    assert [e.type for e in d.events].count("invoice.payment_failed") == 4
    assert kinds(d.log[-5:]) == ["invoice.payment_failed", "discard_pending_charges",
                                 "forfeit_credits", "lock_purchased_credits",
                                 "customer.subscription.deleted"]


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_success_on_a_retry_returns_to_active_on_the_same_anchor(failures):
    d = past_due(*([DECLINE] * (failures - 1)), OK)
    d.advance(at(2024, 3, 20))
    s = d.state
    assert s.status == Status.ACTIVE
    assert s.dunning is None
    assert (s.current_period_start, s.current_period_end) == (RENEWAL, NEXT_END)
    assert s.billing_cycle_anchor == T0
    assert s.current_period_paid == 3000
    assert d.charges[-1].attempt == failures + 1
    grant = d.of(GrantCredits)[-1]
    assert grant.period_key == "20240229T120000Z" and grant.amount == 1000
    assert d.events[-1].previous_attributes == {"status": "past_due"}
    d.advance(NEXT_END)
    assert d.charges[-1].period_key == "20240331T120000Z" and d.charges[-1].attempt == 1


def test_final_action_unpaid_then_a_new_payment_method_retries_at_once():
    d = past_due(DECLINE, DECLINE, DECLINE, policy=UNPAID_POLICY)
    d.advance(RETRY4)
    s = d.state
    assert s.status == Status.UNPAID
    assert not s.has_access(RETRY4)
    assert s.dunning.attempts == 4 and s.dunning.next_retry_at is None
    assert next_wakeup(s) is None
    assert d.events[-1].previous_attributes == {"status": "past_due"}
    assert s.renewal_line is None
    d.advance(at(2024, 3, 25))
    assert len(d.charges) == 5  # no retries while unpaid
    mark = d.mark
    d.script(OK).request(PaymentMethodUpdated(payment_method_id="pm_new"), at(2024, 3, 25))
    cmds = d.since(mark)
    assert kinds(cmds)[:2] == ["charge", "grant_credits"]
    assert cmds[0].idempotency_key == "sub_1:20240229T120000Z:5"
    s = d.state
    assert s.status == Status.ACTIVE and s.dunning is None
    assert (s.current_period_start, s.current_period_end) == (RENEWAL, NEXT_END)


def test_unpaid_stays_unpaid_when_the_new_method_is_declined_too():
    d = past_due(DECLINE, DECLINE, DECLINE, policy=UNPAID_POLICY)
    d.advance(RETRY4)
    d.script(DECLINE).request(PaymentMethodUpdated(), at(2024, 3, 25))
    assert d.state.status == Status.UNPAID and d.state.dunning.attempts == 5


def test_new_payment_method_during_past_due_retries_immediately():
    d = past_due(OK)
    when = at(2024, 3, 1, 9)
    mark = d.mark
    d.request(PaymentMethodUpdated(), when)
    cmds = d.since(mark)
    assert cmds[0].idempotency_key == "sub_1:20240229T120000Z:2"
    assert d.state.status == Status.ACTIVE
    d.advance(RETRY2)
    assert len(d.charges) == 3  # the scheduled retry does not run any more


def test_new_payment_method_declined_reschedules_from_now():
    d = past_due(DECLINE)
    when = at(2024, 3, 1, 9)
    d.request(PaymentMethodUpdated(), when)
    assert d.state.status == Status.PAST_DUE
    assert d.state.dunning.attempts == 2
    assert d.state.dunning.next_retry_at == when + timedelta(days=5)
    assert d.state.dunning.grace_until == GRACE_UNTIL  # grace does not restart


def test_new_payment_method_while_active_changes_nothing():
    d = Driver.create(T0)
    before = d.state
    mark = d.mark
    d.request(PaymentMethodUpdated(payment_method_id="pm_1"), at(2024, 2, 10))
    assert d.state == before and d.since(mark) == []


def test_cancel_immediately_during_dunning_stops_the_retries():
    d = past_due()
    mark = d.mark
    d.request(Cancel(mode="immediately"), at(2024, 3, 2))
    assert kinds(d.since(mark)) == ["discard_pending_charges", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]
    assert d.state.dunning is None and d.state.status == Status.CANCELED
    n = len(d.charges)
    d.advance(at(2024, 5, 1))
    assert len(d.charges) == n


@pytest.mark.parametrize("request_", [
    Cancel(mode="at_period_end"),
    Cancel(mode="at_date", cancel_at=at(2024, 3, 20)),
], ids=["at_period_end", "at_date"])
@pytest.mark.parametrize("policy", [None, UNPAID_POLICY], ids=["past_due", "unpaid"])
def test_scheduled_cancel_is_refused_with_an_unpaid_period(request_, policy):
    d = past_due(DECLINE, DECLINE, DECLINE, policy=policy)
    when = at(2024, 3, 2)
    if policy is not None:
        d.advance(RETRY4)
        when = at(2024, 3, 16)
    before = d.state
    with pytest.raises(RequestRefused) as err:
        d.request(request_, when)
    assert err.value.code == "unpaid_period" and err.value.field == "mode"
    assert before.status.value in err.value.message
    assert d.state == before


def test_a_scheduled_cancellation_reached_during_dunning_ends_it():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 2), requested_by=Actor(id="u1")),
              at(2024, 2, 10))
    d.script(DECLINE)
    d.advance(RENEWAL)
    s = d.state
    assert s.status == Status.PAST_DUE and s.cancel_at == at(2024, 3, 2)
    assert s.renewal_line == f"Cancelling on {at(2024, 3, 2).isoformat()}"
    assert next_wakeup(s) == at(2024, 3, 2)  # before the Mar 3 retry
    mark = d.mark
    d.advance(at(2024, 4, 1))
    assert kinds(d.since(mark)) == ["collect_pending_charges", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]
    s = d.state
    assert s.status == Status.CANCELED and s.ended_at == at(2024, 3, 2)
    assert s.cancellation.reason == "cancellation_requested"
    assert s.cancellation.requested_by == Actor(id="u1")
    assert d.events[-1].request is None
    assert len(d.charges) == 2


def test_retries_are_exhausted_before_a_late_scheduled_cancellation():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 25)), at(2024, 2, 10))
    d.script(DECLINE, DECLINE, DECLINE, DECLINE)
    d.advance(at(2024, 4, 1))
    assert d.state.status == Status.CANCELED
    assert d.state.ended_at == RETRY4
    assert d.state.cancellation.reason == "payment_failed"


def test_custom_policy_delays_and_attempts():
    policy = BillingPolicy(retry_delays=(timedelta(hours=12), timedelta(days=1)),
                           grace_period=timedelta(days=2))
    d = past_due(DECLINE, DECLINE, policy=policy)
    assert d.state.dunning.grace_until == RENEWAL + timedelta(days=2)
    d.advance(at(2024, 3, 10))
    charge_times = [s.now for s in d.steps if any(isinstance(c, Charge) for c in s.commands)]
    assert charge_times[1:] == [RENEWAL, RENEWAL + timedelta(hours=12),
                                RENEWAL + timedelta(hours=36)]
    assert d.state.status == Status.CANCELED  # 3 attempts in all


def test_no_retries_policy_cancels_at_the_first_failure():
    d = past_due(policy=BillingPolicy(retry_delays=()))
    assert d.state.status == Status.CANCELED
    assert d.state.cancellation.reason == "payment_failed"


# First payment --------------------------------------------------------------------------------


def test_failed_first_payment_stays_incomplete_without_access_and_retries():
    d = Driver.create(T0, outcomes=[DECLINE, OK])
    s = d.state
    assert s.status == Status.INCOMPLETE
    assert not s.has_access(T0)
    assert s.dunning.grace_until == T0 and s.dunning.next_retry_at == T0 + timedelta(days=3)
    assert d.events[-1].type == "invoice.payment_failed"  # status unchanged: no update event
    d.advance(T0 + timedelta(days=3))
    assert d.charges[-1].idempotency_key == "sub_1:20240131T120000Z:2"
    assert d.charges[-1].purpose == "first_period"
    s = d.state
    assert s.status == Status.ACTIVE
    assert (s.current_period_start, s.current_period_end) == (T0, RENEWAL)


@pytest.mark.parametrize("policy", [BillingPolicy(), UNPAID_POLICY], ids=["cancel", "unpaid"])
def test_failed_first_payment_is_cancelled_after_the_last_attempt_whatever_final_action(policy):
    d = Driver.create(T0, policy=policy, default=DECLINE)
    d.advance(at(2024, 3, 1))
    assert len(d.charges) == 4
    assert d.state.status == Status.CANCELED
    assert d.state.cancellation.reason == "payment_failed"


def test_scheduled_cancel_is_refused_while_incomplete():
    d = Driver.create(T0, outcomes=[DECLINE])
    with pytest.raises(RequestRefused) as err:
        d.request(Cancel(mode="at_period_end"), T0 + SECOND)
    assert err.value.code == "unpaid_period"
    d.request(Cancel(mode="immediately"), T0 + SECOND)
    assert d.state.status == Status.CANCELED


# Dunning is kept by reactivate and postpone ------------------------------------------------------


def _past_due_with_cancel_at() -> Driver:
    d = Driver.create(T0)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 20)), at(2024, 2, 10))
    d.script(DECLINE)
    d.advance(RENEWAL)
    assert d.state.status == Status.PAST_DUE
    return d


def test_reactivate_during_dunning_keeps_past_due_and_the_retries():
    d = _past_due_with_cancel_at()
    d.request(Reactivate(), at(2024, 3, 1))
    assert d.state.cancel_at is None
    assert d.state.status == Status.PAST_DUE
    assert next_wakeup(d.state) == RETRY2


def test_postpone_during_dunning_keeps_past_due_and_the_retries():
    d = _past_due_with_cancel_at()
    d.request(Postpone(cancel_at=at(2024, 3, 25)), at(2024, 3, 1))
    assert d.state.status == Status.PAST_DUE
    assert next_wakeup(d.state) == RETRY2


# Dunning longer than the period ------------------------------------------------------------------


def test_renewals_wait_while_past_due_and_are_caught_up_after_a_late_success():
    from tests.domain.helpers import WEEKLY

    d = Driver.create(T0, plan=WEEKLY).script(DECLINE, DECLINE, OK)
    d.advance(at(2024, 2, 14, 12))  # the Feb 7 renewal is still in dunning at its period end
    assert d.state.status == Status.PAST_DUE
    assert d.state.current_period_end == at(2024, 2, 14, 12)
    assert [c.period_key[:8] for c in d.charges] == ["20240131", "20240207", "20240207"]
    d.advance(at(2024, 2, 15, 12))  # third attempt (Feb 10 + 5 days) succeeds...
    # ...and the overdue Feb 14 renewal is charged in the same instant.
    assert [c.idempotency_key for c in d.charges[3:]] == ["sub_1:20240207T120000Z:3",
                                                           "sub_1:20240214T120000Z:1"]
    assert d.state.status == Status.ACTIVE
    assert d.state.current_period_end == at(2024, 2, 21, 12)


def test_payment_method_success_after_the_period_end_renews_right_away():
    from tests.domain.helpers import WEEKLY

    d = Driver.create(T0, plan=WEEKLY, policy=UNPAID_POLICY)
    d.script(DECLINE, DECLINE, DECLINE, DECLINE)
    d.advance(at(2024, 3, 1, 12))
    assert d.state.status == Status.UNPAID  # since Feb 22, the Feb 7 period still open
    assert d.state.current_period_start == at(2024, 2, 7, 12)
    n = len(d.charges)
    d.request(PaymentMethodUpdated(), at(2024, 3, 1, 12))
    # The Feb 7 period (the debt) is paid; the Feb 14 and Feb 21 periods, spent without
    # access, are skipped; the period containing now (Feb 28) is charged once.
    assert [c.idempotency_key for c in d.charges[n:]] == [
        "sub_1:20240207T120000Z:5", "sub_1:20240228T120000Z:1"]
    assert [g.period_key for g in d.of(GrantCredits)][-2:] == [
        "20240207T120000Z", "20240228T120000Z"]
    assert d.state.status == Status.ACTIVE
    assert d.state.current_period_start == at(2024, 2, 28, 12)
    assert d.state.current_period_end == at(2024, 3, 6, 12)


def test_late_recovery_months_later_charges_the_current_period_once():
    d = past_due(DECLINE, DECLINE, DECLINE, policy=UNPAID_POLICY)
    d.advance(RETRY4)
    assert d.state.status == Status.UNPAID
    n = len(d.charges)
    d.request(PaymentMethodUpdated(), at(2024, 6, 10))  # Mar, Apr, May without access
    late = d.charges[n:]
    assert [c.period_key for c in late] == ["20240229T120000Z", "20240531T120000Z"]
    assert sum(c.amount for c in late[1:]) == 3000  # one period charged, not three
    assert (d.state.current_period_start, d.state.current_period_end) == (
        at(2024, 5, 31, 12), at(2024, 6, 30, 12))
    assert d.state.billing_cycle_anchor == T0
