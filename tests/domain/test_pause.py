"""Pause and resume (D12): no charges and no access while paused, renewals stop, the anchor is
kept (or reset) on resume, subscription credits of a period end with it (D15), purchased credits
lock while paused (D16), D8-style events. Scenarios first, then random runs (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import lifecycle
from domain.commands import UnlockPurchasedCredits
from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import next_wakeup
from domain.model import Status
from domain.requests import Cancel, Pause, PaymentMethodUpdated, Postpone, Reactivate, Resume
from tests.domain.helpers import (
    CUSTOMER,
    DECLINE,
    FREE,
    Charge,
    DiscardPendingCharges,
    Driver,
    ForfeitCredits,
    GrantCredits,
    LockPurchasedCredits,
    at,
    examples,
    kinds,
)

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)  # end of the first paid period
MID = at(2024, 2, 14, 12)
MAR31, APR30 = at(2024, 3, 31, 12), at(2024, 4, 30, 12)


def active(**kw) -> Driver:
    return Driver.create(T0, **kw)


def charge_periods(d: Driver) -> list[str]:
    return [c.period_key for c in d.charges]


# Pause at the period end ---------------------------------------------------------------------


def test_pause_at_period_end_is_scheduled_then_stops_renewals_without_charging():
    d = active()
    mark = d.mark
    d.request(Pause(mode="at_period_end", requested_by=CUSTOMER), MID)
    s = d.state
    assert s.status == Status.ACTIVE and s.has_access(MID)
    assert s.renewal_line == f"Pausing on {END.isoformat()}"
    (updated,) = d.events[-1:]
    assert updated.type == "customer.subscription.updated" and updated.request == CUSTOMER
    assert updated.previous_attributes == {"pause_collection": None}
    assert updated.data["pause_collection"] == {"mode": "at_period_end",
                                                "paused_at": END.isoformat(),
                                                "resumes_at": None}
    assert kinds(d.since(mark)) == ["customer.subscription.updated"]

    mark = d.mark
    d.advance(END)
    assert d.state.status == Status.PAUSED and not d.state.has_access(END)
    assert kinds(d.since(mark)) == ["forfeit_credits", "lock_purchased_credits",
                                    "customer.subscription.paused"]
    forfeit, lock = d.since(mark)[:2]
    assert forfeit.period_key == "20240131T120000Z" and forfeit.at == END  # D15
    assert lock.idempotency_key == "sub_1:pause1:lock" and lock.at == END  # D16
    paused = d.events[-1]
    assert paused.request is None  # automatic: the scheduled pause took effect (D8)
    assert paused.previous_attributes == {"status": "active"}
    assert d.state.renewal_line is None and next_wakeup(d.state) is None

    mark = d.mark
    d.advance(at(2024, 12, 31))  # ten months later: nothing happens
    assert d.since(mark) == [] and len(d.charges) == 1


def test_resume_keep_after_the_paid_period_charges_the_anchor_period_once():
    d = active()
    d.request(Pause(), MID)
    d.advance(at(2024, 4, 10))
    mark = d.mark
    d.request(Resume(anchor="keep", requested_by=CUSTOMER), at(2024, 4, 10))
    assert kinds(d.since(mark)) == ["unlock_purchased_credits", "customer.subscription.resumed",
                                    "charge", "grant_credits", "invoice.paid"]
    unlock, _, charge, grant = d.since(mark)[:4]
    assert unlock.idempotency_key == "sub_1:pause1:unlock" and unlock.at == at(2024, 4, 10)
    # The anchor period that contains the resume instant, charged now as a renewal.
    assert charge.idempotency_key == "sub_1:20240331T120000Z:1"
    assert charge.purpose == "renewal" and charge.amount == 3000
    assert grant.period_start == MAR31 and grant.period_end == APR30
    s = d.state
    assert s.status == Status.ACTIVE and s.billing_cycle_anchor == T0 and s.pause is None
    assert (s.current_period_start, s.current_period_end) == (MAR31, APR30)
    assert d.events_of("customer.subscription.resumed")[0].request == CUSTOMER
    d.advance(APR30)
    assert charge_periods(d) == ["20240131T120000Z", "20240331T120000Z", "20240430T120000Z"]


def test_resume_at_is_automatic_and_charges_at_that_instant():
    d = active()
    d.request(Pause(resume_at=at(2024, 3, 5)), MID)
    assert d.state.pause.resume_at == at(2024, 3, 5)
    d.advance(END)
    assert d.state.renewal_line == f"Resuming on {at(2024, 3, 5).isoformat()}"
    assert next_wakeup(d.state) == at(2024, 3, 5)
    d.advance(at(2024, 3, 6))
    assert d.state.status == Status.ACTIVE
    (resumed,) = d.events_of("customer.subscription.resumed")
    assert resumed.request is None and resumed.created == at(2024, 3, 5)
    (_, second) = d.charges
    assert second.period_key == "20240229T120000Z"  # Feb 29 -> Mar 31, charged on Mar 5


# Pause now -------------------------------------------------------------------------------------


def test_pause_now_stops_access_at_once_and_keeps_the_paid_period_credits_until_its_end():
    d = active()
    mark = d.mark
    d.request(Pause(mode="now", requested_by=CUSTOMER), MID)
    assert d.state.status == Status.PAUSED and not d.state.has_access(MID)
    assert kinds(d.since(mark)) == ["lock_purchased_credits", "customer.subscription.paused"]
    assert d.events[-1].request == CUSTOMER
    assert next_wakeup(d.state) == END  # the paid period's credits end with it (D15)
    mark = d.mark
    d.advance(END)
    assert kinds(d.since(mark)) == ["forfeit_credits"]
    assert d.since(mark)[0].period_key == "20240131T120000Z"
    assert d.state.status == Status.PAUSED and next_wakeup(d.state) is None
    assert len(d.charges) == 1


def test_resume_keep_inside_the_paid_period_charges_nothing_and_renews_on_the_anchor():
    d = active()
    d.request(Pause(mode="now"), MID)
    mark = d.mark
    d.request(Resume(), MID + timedelta(days=3))
    assert kinds(d.since(mark)) == ["unlock_purchased_credits", "customer.subscription.resumed"]
    assert d.state.status == Status.ACTIVE and d.state.current_period_end == END
    assert d.state.renewal_line == f"Renewing on {END.isoformat()}"
    mark = d.mark
    d.advance(END)
    assert kinds(d.since(mark))[:2] == ["forfeit_credits", "charge"]
    assert charge_periods(d) == ["20240131T120000Z", "20240229T120000Z"]


def test_resume_reset_starts_a_new_anchor_and_charges_now():
    d = active()
    d.request(Pause(mode="now"), MID)
    when = at(2024, 2, 20, 8, 30)
    mark = d.mark
    d.request(Resume(anchor="reset"), when)
    assert kinds(d.since(mark))[:4] == ["forfeit_credits", "unlock_purchased_credits",
                                        "customer.subscription.resumed", "charge"]
    forfeit = d.since(mark)[0]
    assert forfeit.period_key == "20240131T120000Z" and forfeit.at == when
    s = d.state
    assert s.billing_cycle_anchor == when and s.current_period_start == when
    assert s.current_period_end == at(2024, 3, 20, 8, 30)
    assert d.charges[-1].idempotency_key == "sub_1:20240220T083000Z:1"
    d.advance(at(2024, 3, 20, 8, 30))
    assert charge_periods(d)[-1] == "20240320T083000Z"


def test_resume_reset_after_the_paid_period_does_not_forfeit_twice():
    d = active()
    d.request(Pause(), MID)
    d.advance(at(2024, 3, 10))
    mark = d.mark
    d.request(Resume(anchor="reset"), at(2024, 3, 10))
    assert kinds(d.since(mark))[:3] == ["unlock_purchased_credits",
                                        "customer.subscription.resumed", "charge"]
    forfeits = [c.idempotency_key for c in d.of(ForfeitCredits)]
    assert len(forfeits) == len(set(forfeits))


def test_a_declined_resume_charge_enters_dunning():
    d = active()
    d.request(Pause(), MID)
    d.script(DECLINE)
    d.request(Resume(), at(2024, 3, 10))
    assert d.state.status == Status.PAST_DUE and d.state.dunning.attempts == 1
    assert d.state.pause is None


def test_a_free_plan_resumes_without_a_charge_and_gets_its_credits():
    d = active(plan=FREE)
    d.request(Pause(), MID)
    mark = d.mark
    d.request(Resume(), at(2024, 3, 10))
    assert d.charges == [] and d.state.status == Status.ACTIVE
    (grant,) = d.of(GrantCredits, d.since(mark))
    assert grant.period_key == "20240229T120000Z"


def test_each_pause_locks_and_unlocks_under_its_own_key():
    d = active()
    d.request(Pause(mode="now"), MID)
    d.request(Resume(), MID + timedelta(seconds=1))
    d.request(Pause(mode="now"), MID + timedelta(seconds=1))
    d.request(Resume(), MID + timedelta(seconds=2))
    assert [c.idempotency_key for c in d.of(LockPurchasedCredits)] == [
        "sub_1:pause1:lock", "sub_1:pause2:lock"]
    assert [c.idempotency_key for c in d.of(UnlockPurchasedCredits)] == [
        "sub_1:20240131T120000Z:subscribe-unlock",  # the first paid period (D16)
        "sub_1:pause1:unlock", "sub_1:pause2:unlock"]


# Removing a scheduled pause, cancelling while paused ------------------------------------------


def test_resume_removes_a_scheduled_pause_and_renewal_is_charged_as_usual():
    d = active()
    d.request(Pause(resume_at=at(2024, 4, 1)), MID)
    mark = d.mark
    d.request(Resume(), MID + timedelta(days=1))
    assert kinds(d.since(mark)) == ["customer.subscription.updated"]
    assert d.events[-1].previous_attributes["pause_collection"]["resumes_at"] == \
        at(2024, 4, 1).isoformat()
    assert d.state.pause is None and d.state.renewal_line == f"Renewing on {END.isoformat()}"
    d.advance(END)
    assert len(d.charges) == 2 and d.state.status == Status.ACTIVE


def test_cancel_immediately_while_paused_ends_it():
    d = active()
    d.request(Pause(mode="now"), MID)
    mark = d.mark
    d.request(Cancel(mode="immediately", requested_by=CUSTOMER), MID + timedelta(days=1))
    s = d.state
    assert s.status == Status.CANCELED and s.pause is None and next_wakeup(s) is None
    assert kinds(d.since(mark)) == ["discard_pending_charges", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]
    deleted = d.events[-1]
    assert deleted.request == CUSTOMER and deleted.previous_attributes["status"] == "paused"
    assert "pause_collection" in deleted.previous_attributes
    d.advance(at(2024, 6, 1))
    assert len(d.charges) == 1
    with pytest.raises(RequestRefused) as err:
        d.request(Resume())
    assert err.value.code == "subscription_ended"


def test_cancel_immediately_with_a_scheduled_pause_ends_it():
    d = active()
    d.request(Pause(), MID)
    d.request(Cancel(mode="immediately"), MID)
    assert d.state.status == Status.CANCELED and d.state.pause is None
    assert d.of(DiscardPendingCharges)


# Refusals (nothing changes) -----------------------------------------------------------------


def _refused(d: Driver, request, now=None) -> RequestRefused:
    d.advance(d.now if now is None else now)
    before = d.state
    with pytest.raises(RequestRefused) as err:
        d.validate(request, now)
    with pytest.raises(RequestRefused) as err2:
        d.request(request, now)
    assert (err.value.code, err.value.field) == (err2.value.code, err2.value.field)
    assert d.state == before
    return err2.value


def _paused() -> Driver:
    d = active()
    d.request(Pause(mode="now"), MID)
    return d


@pytest.mark.parametrize("make, request_, code, field", [
    (_paused, Reactivate(), "paused", None),
    (_paused, Pause(mode="now"), "already_paused", None),
    (_paused, Cancel(mode="at_period_end"), "paused", "mode"),
    (_paused, Postpone(cancel_at=at(2024, 5, 1)), "nothing_to_postpone", None),
    (lambda: _scheduled_pause(), Pause(mode="now"), "pause_scheduled", "mode"),
    (lambda: _scheduled_pause(), Cancel(mode="at_period_end"), "pause_scheduled", "mode"),
    (lambda: _scheduled_pause(), Resume(anchor="reset"), "pause_not_in_effect", "anchor"),
    (lambda: _scheduled_pause(), Reactivate(), "nothing_to_reactivate", None),
    (active, Resume(), "not_paused", None),
    (lambda: Driver.create(T0, trial_end=at(2024, 2, 14)), Pause(), "trialing", None),
    (lambda: Driver.create(T0, start_date=at(2024, 3, 1)), Pause(), "not_started", None),
    (lambda: _with_cancel(), Pause(), "cancellation_scheduled", None),
    (lambda: _past_due(), Pause(), "unpaid_period", None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_refusals_name_the_rule_and_change_nothing(make, request_, code, field):
    d = make()
    err = _refused(d, request_)
    assert (err.code, err.field) == (code, field)
    assert err.message


def _scheduled_pause() -> Driver:
    d = active()
    d.request(Pause(), MID)
    return d


def _with_cancel() -> Driver:
    d = active()
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 5, 1)), MID)
    return d


def _past_due() -> Driver:
    d = active().script(DECLINE)
    d.advance(END)
    assert d.state.status == Status.PAST_DUE
    return d


def test_reactivate_refusal_says_to_use_resume():
    err = _refused(_paused(), Reactivate())
    assert "resume" in err.message


@pytest.mark.parametrize("mode, resume_at, code", [
    ("now", MID, "resume_at_not_in_future"),
    ("now", MID - timedelta(days=1), "resume_at_not_in_future"),
    ("at_period_end", MID + timedelta(days=1), "resume_at_not_after_pause"),
    ("at_period_end", END, "resume_at_not_after_pause"),
])
def test_resume_at_must_follow_the_pause(mode, resume_at, code):
    err = _refused(active(), Pause(mode=mode, resume_at=resume_at), MID)
    assert isinstance(err, RequestInvalid)
    assert (err.code, err.field) == (code, "resume_at")


def test_resume_at_in_the_past_is_invalid_even_when_already_paused():
    err = _refused(_paused(), Pause(mode="now", resume_at=MID - timedelta(days=1)))
    assert isinstance(err, RequestInvalid) and err.field == "resume_at"


def test_an_ended_subscription_cannot_pause():
    d = active()
    d.request(Cancel(mode="immediately"), MID)
    assert _refused(d, Pause()).code == "subscription_ended"


def test_requests_validate_their_fields():
    with pytest.raises(ValidationError, match="timezone-aware"):
        Pause(resume_at=MID.replace(tzinfo=None))
    with pytest.raises(ValidationError):
        Pause(mode="later")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Resume(anchor="now")  # type: ignore[arg-type]


def test_payment_method_update_while_paused_changes_nothing():
    d = _paused()
    before = d.state
    d.request(PaymentMethodUpdated(), MID + timedelta(days=1))
    assert d.state == before


def test_transitions_due_come_before_a_request_at_the_same_instant():
    d = active()
    d.request(Pause(resume_at=at(2024, 3, 5)), MID)
    # At resume_at the automatic resume has already happened: a Resume is one moment late.
    assert _refused(d, Resume(), at(2024, 3, 5)).code == "not_paused"


# Random runs -----------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([1, 3600, 86400, 10 * 86400, 40 * 86400])),
    st.tuples(st.just("pause"), st.sampled_from(["now", "at_period_end"]),
              st.sampled_from([None, 86400, 20 * 86400, 45 * 86400])),
    st.tuples(st.just("resume"), st.sampled_from(["keep", "keep", "reset"])),
    st.tuples(st.just("cancel"), st.sampled_from(["immediately", "at_period_end"])),
    st.tuples(st.just("reactivate")),
)


def _play(d: Driver, step) -> None:
    now = d.now
    try:
        if step[0] == "wait":
            d.advance(now + timedelta(seconds=step[1]))
        elif step[0] == "pause":
            mode, resume = step[1], step[2]
            paused_at = now if mode == "now" else d.state.current_period_end
            d.request(Pause(mode=mode, resume_at=None if resume is None else
                            paused_at + timedelta(seconds=resume)), now)
        elif step[0] == "resume":
            d.request(Resume(anchor=step[1]), now)
        elif step[0] == "cancel":
            d.request(Cancel(mode=step[1]), now)
        else:
            d.request(Reactivate(), now)
    except RequestRefused:
        pass


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(STEP, min_size=1, max_size=14))
def test_random_pauses_never_charge_while_paused_and_keep_money_and_credits_consistent(steps):
    d = active()
    for step in steps:
        _play(d, step)
    d.advance(d.now + timedelta(days=1))
    keys = [c.idempotency_key for c in d.charges]
    assert len(keys) == len(set(keys))  # each period charged at most once
    for s in d.steps:
        charges = [c for c in s.commands if isinstance(c, Charge)]
        if charges:
            # A charge is only ever made for a period containing the instant, never while
            # paused: the state after the step is active (or past_due after a decline).
            assert s.after.status != Status.PAUSED
            for c in charges:
                assert c.period_key <= s.now.strftime("%Y%m%dT%H%M%SZ")
        if s.after.status == Status.PAUSED:
            assert not s.after.has_access(s.now) and s.after.pause is not None
            assert lifecycle.next_wakeup(s.after) in {None, s.after.current_period_end,
                                                      s.after.pause.resume_at}
    # Charged periods go forward in time; only a reset anchor may start one inside the last.
    periods = [(g.period_start, g.period_end) for g in d.of(GrantCredits)]
    resets = any(st_[0] == "resume" and st_[1] == "reset" for st_ in steps)
    for (start0, end), (start, _) in zip(periods, periods[1:]):
        assert start0 < start and (resets or end <= start)
    # Locks and unlocks alternate: lock of pause n, then (maybe) unlock of the same n; n grows
    # (a scheduled pause removed before it took effect leaves a gap).
    pause_keys = [c.idempotency_key.split(":")[1:] for c in d.log
                  if isinstance(c, LockPurchasedCredits | UnlockPurchasedCredits)
                  and ":pause" in c.idempotency_key]
    assert [k[1] for k in pause_keys] == ["lock", "unlock"] * (len(pause_keys) // 2) + \
        ["lock"] * (len(pause_keys) % 2)
    seqs = [int(k[0].removeprefix("pause")) for k in pause_keys]
    assert seqs[::2] == sorted(set(seqs[::2])) and seqs[1::2] == seqs[:len(seqs[1::2]) * 2:2]
    # Forfeits: once per period.
    forfeits = [c.idempotency_key for c in d.of(ForfeitCredits)]
    assert len(forfeits) == len(set(forfeits)) or d.state.status == Status.CANCELED
