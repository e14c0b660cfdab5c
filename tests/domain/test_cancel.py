"""Cancellation: immediately (D6, D8), at period end (D2, D7, D8), at a date (D1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.lifecycle import next_wakeup
from domain.model import Actor, Status
from domain.requests import Cancel
from tests.domain.helpers import (
    CUSTOMER,
    FREE,
    PRO,
    SECOND,
    CollectPendingCharges,
    DiscardPendingCharges,
    Driver,
    ForfeitCredits,
    LockPurchasedCredits,
    Refund,
    at,
    examples,
    kinds,
)

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)  # the first period is 29 days long
MID = at(2024, 2, 14, 12)
OWNER = Actor(kind="customer", id="usr_owner")


def active() -> Driver:
    return Driver.create(T0)


# Immediately (D6, D8) --------------------------------------------------------------------------


def test_cancel_immediately_ends_now_with_d6_commands_and_a_deleted_event():
    d = active()
    mark = d.mark
    d.request(Cancel(mode="immediately", feedback="too_expensive", comment="pricey",
                     requested_by=OWNER), MID)
    cmds = d.since(mark)
    assert kinds(cmds) == ["discard_pending_charges", "forfeit_credits",
                           "lock_purchased_credits", "customer.subscription.deleted"]
    assert cmds[0] == DiscardPendingCharges(idempotency_key="sub_1:20240131T120000Z:discard",
                                            period_key="20240131T120000Z", currency="usd")
    assert cmds[1] == ForfeitCredits(idempotency_key="sub_1:20240131T120000Z:forfeit",
                                     period_key="20240131T120000Z", at=MID)
    assert cmds[2] == LockPurchasedCredits(idempotency_key="sub_1:lock",
                                           period_key="20240131T120000Z", at=MID)
    s = d.state
    assert s.status == Status.CANCELED and s.ended
    assert s.canceled_at == MID and s.ended_at == MID
    assert s.cancel_at is None and not s.cancel_at_period_end
    assert not s.has_access(MID)
    assert next_wakeup(s) is None
    assert s.renewal_line is None
    deleted = cmds[3].event
    assert deleted.request == OWNER
    assert deleted.created == MID
    assert deleted.data["status"] == "canceled"
    assert deleted.data["ended_at"] == MID.isoformat()
    assert deleted.data["cancellation_details"] == {
        "mode": "immediately", "reason": "cancellation_requested", "feedback": "too_expensive",
        "comment": "pricey", "requested_by": {"kind": "customer", "id": "usr_owner"},
        "refund": "none"}
    assert deleted.previous_attributes == {"status": "active", "canceled_at": None,
                                           "ended_at": None, "cancellation_details": None}


def test_no_charge_ever_follows_an_immediate_cancel():
    d = active()
    d.request(Cancel(mode="immediately"), MID)
    mark = d.mark
    d.advance(at(2025, 6, 1))
    assert d.since(mark) == [] and len(d.charges) == 1


@pytest.mark.parametrize(("when", "mode", "amount"), [
    (MID, "none", None),
    (MID, "full", 3000),
    (END - SECOND, "full", 3000),
    (T0, "prorated", 3000),  # nothing used yet
    (T0 + timedelta(days=1), "prorated", 2896),  # 3000 * 28/29 = 2896.55
    (MID, "prorated", 1551),  # 3000 * 15/29 = 1551.72
    (at(2024, 2, 28, 12), "prorated", 103),  # 3000 * 1/29 = 103.45
    (END - timedelta(hours=1), "prorated", 4),  # 3000 * 3600/2505600 = 4.31
    (END - SECOND, "prorated", None),  # 0.0012 rounds down to nothing: no Refund command
])
def test_immediate_cancel_refunds(when, mode, amount):
    d = active()
    mark = d.mark
    d.request(Cancel(mode="immediately", refund=mode), when)
    refunds = d.of(Refund, d.since(mark))
    if amount is None:
        assert refunds == []
        return
    assert refunds == [Refund(idempotency_key="sub_1:20240131T120000Z:refund",
                              period_key="20240131T120000Z", payment_intent_id="pi_sub_1_1",
                              amount=amount, reason=f"cancellation_{mode}")]
    assert kinds(d.since(mark)) == ["discard_pending_charges", "refund", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]


def test_prorated_refund_in_a_later_period_uses_that_period_and_payment():
    d = active()
    d.advance(at(2024, 3, 15, 12))  # period Feb 29 12:00 -> Mar 31 12:00 (31 days)
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="prorated"), at(2024, 3, 15, 12))
    (refund,) = d.of(Refund, d.since(mark))
    assert refund.amount == 3000 * 16 // 31  # 1548
    assert refund.payment_intent_id == "pi_sub_1_2"
    assert refund.period_key == "20240229T120000Z"


@pytest.mark.parametrize("mode", ["prorated", "full"])
def test_nothing_to_refund_on_a_free_plan(mode):
    d = Driver.create(T0, plan=FREE)
    mark = d.mark
    d.request(Cancel(mode="immediately", refund=mode), MID)
    assert d.of(Refund, d.since(mark)) == []


def test_prorated_refund_is_exact_with_millisecond_instants():
    d = active()
    when = at(2024, 2, 29, 6, 39, 50, 400_000)  # exactly 23/3000 of the period remains
    assert (END - when) * 3000 == (END - T0) * 23
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="prorated"), when)
    (refund,) = d.of(Refund, d.since(mark))
    assert refund.amount == 23


# At period end (D2, D7, D8) ----------------------------------------------------------------------


def test_cancel_at_period_end_schedules_non_renewing_keeping_access_and_date():
    d = active()
    before = d.state
    assert before.renewal_line == f"Renewing on {END.isoformat()}"
    mark = d.mark
    d.request(Cancel(mode="at_period_end", feedback="unused", requested_by=OWNER), MID)
    s = d.state
    assert s.status == Status.NON_RENEWING
    assert s.cancel_at == s.current_period_end == END
    assert s.cancel_at_period_end is True
    assert s.canceled_at == MID and s.ended_at is None
    assert s.cancellation.mode == "at_period_end" and s.cancellation.requested_by == OWNER
    assert s.renewal_line == f"Cancelling on {END.isoformat()}"  # D2: same date
    assert s.has_access(MID) and s.has_access(END - SECOND)
    # Nothing else changes for members (D2).
    assert (s.current_period_start, s.current_period_end, s.period_index,
            s.current_period_paid) == (before.current_period_start, before.current_period_end,
                                       before.period_index, before.current_period_paid)
    assert next_wakeup(s) == END
    (cmd,) = d.since(mark)
    event = cmd.event
    assert event.type == "customer.subscription.updated"
    assert event.request == OWNER
    assert event.data["cancel_at_period_end"] is True
    assert event.data["status"] == "non_renewing"
    assert event.previous_attributes == {"status": "active", "cancel_at": None,
                                         "cancel_at_period_end": False, "canceled_at": None,
                                         "cancellation_details": None}


def test_scheduled_cancel_takes_effect_at_the_period_end_without_a_charge():
    d = active()
    d.request(Cancel(mode="at_period_end", requested_by=OWNER), MID)
    mark = d.mark
    d.advance(END - SECOND)
    assert d.since(mark) == [] and d.state.status == Status.NON_RENEWING
    d.advance(END)
    cmds = d.since(mark)
    assert kinds(cmds) == ["collect_pending_charges", "forfeit_credits",
                           "lock_purchased_credits", "customer.subscription.deleted"]
    assert cmds[0] == CollectPendingCharges(idempotency_key="sub_1:20240131T120000Z:final",
                                            period_key="20240131T120000Z", currency="usd")
    assert cmds[1].at == END and cmds[2].at == END
    s = d.state
    assert s.status == Status.CANCELED
    assert s.ended_at == END and s.canceled_at == MID
    deleted = cmds[3].event
    assert deleted.request is None  # automatic (D8)
    assert deleted.created == END
    assert deleted.data["cancellation_details"]["requested_by"] == {"kind": "customer",
                                                                    "id": "usr_owner"}
    assert deleted.data["cancellation_details"]["mode"] == "at_period_end"
    assert deleted.previous_attributes["status"] == "non_renewing"
    assert len(d.charges) == 1
    d.advance(at(2024, 6, 1))
    assert len(d.charges) == 1


def test_cancel_at_period_end_one_second_before_the_end():
    d = active()
    d.request(Cancel(mode="at_period_end"), END - SECOND)
    assert d.state.status == Status.NON_RENEWING and d.state.cancel_at == END
    d.advance(END)
    assert d.state.status == Status.CANCELED and d.state.ended_at == END
    assert len(d.charges) == 1


def test_cancel_at_period_end_made_at_the_period_end_applies_to_the_renewed_period():
    # At END the renewal happens first (transitions before requests): the cancel then applies
    # to the new period.
    d = active()
    d.request(Cancel(mode="at_period_end"), END)
    assert len(d.charges) == 2
    assert d.state.cancel_at == at(2024, 3, 31, 12)


def test_cancel_at_period_end_twice_keeps_the_date_and_reemits():
    d = active()
    d.request(Cancel(mode="at_period_end"), MID)
    n = len(d.events)
    d.request(Cancel(mode="at_period_end", feedback="other"), MID + SECOND)
    assert d.state.cancel_at == END and d.state.status == Status.NON_RENEWING
    assert d.events[n].previous_attributes.keys() == {"canceled_at", "cancellation_details"}


def test_scheduled_end_does_not_refund_unless_asked():
    d = active()
    d.request(Cancel(mode="at_period_end", refund="prorated"), MID)
    d.advance(END)
    assert d.of(Refund) == []  # nothing unused at the period end


# At a date (D1) ----------------------------------------------------------------------------------


def test_cancel_at_a_date_inside_the_period():
    d = active()
    cancel_at = at(2024, 2, 20)
    mark = d.mark
    d.request(Cancel(mode="at_date", cancel_at=cancel_at), MID)
    s = d.state
    assert s.status == Status.NON_RENEWING
    assert s.cancel_at == cancel_at and s.cancel_at_period_end is False
    assert s.renewal_line == f"Cancelling on {cancel_at.isoformat()}"
    assert next_wakeup(s) == cancel_at
    assert kinds(d.since(mark)) == ["customer.subscription.updated"]
    d.advance(cancel_at)
    assert d.state.status == Status.CANCELED and d.state.ended_at == cancel_at
    assert len(d.charges) == 1


def test_cancel_at_a_date_inside_the_period_with_a_prorated_refund():
    d = active()
    cancel_at = MID
    d.request(Cancel(mode="at_date", cancel_at=cancel_at, refund="prorated"), T0 + SECOND)
    d.advance(cancel_at)
    (refund,) = d.of(Refund)
    assert refund.amount == 1551 and refund.reason == "cancellation_prorated"


def test_cancel_at_a_date_equal_to_the_period_end_is_at_period_end():
    d = active()
    d.request(Cancel(mode="at_date", cancel_at=END), MID)
    assert d.state.status == Status.NON_RENEWING
    assert d.state.cancel_at_period_end is True


def test_cancel_at_a_date_beyond_the_period_renews_first_then_ends_inside_a_later_period():
    d = active()
    cancel_at = at(2024, 4, 15, 12)
    d.request(Cancel(mode="at_date", cancel_at=cancel_at, refund="prorated"), MID)
    s = d.state
    assert s.status == Status.ACTIVE  # still renewing
    assert s.cancel_at == cancel_at and s.cancel_at_period_end is False
    assert next_wakeup(s) == END
    d.advance(END)  # renews Feb 29 -> Mar 31, charged; cancel_at not in it: still active
    assert [c.period_key[:8] for c in d.charges] == ["20240131", "20240229"]
    assert d.state.status == Status.ACTIVE
    n = len(d.events)
    d.advance(at(2024, 3, 31, 12))  # the period containing cancel_at is charged too
    assert [c.period_key[:8] for c in d.charges] == ["20240131", "20240229", "20240331"]
    assert d.state.status == Status.NON_RENEWING
    assert d.state.current_period_end == at(2024, 4, 30, 12)
    updated = d.events[-1]
    assert updated.type == "customer.subscription.updated" and updated.request is None
    assert updated.previous_attributes == {"status": "active"}
    assert [e.type for e in d.events[n:]] == ["invoice.paid", "customer.subscription.updated"]
    d.advance(cancel_at)
    s = d.state
    assert s.status == Status.CANCELED and s.ended_at == cancel_at
    (refund,) = d.of(Refund)
    assert refund.amount == 1500  # 15 of the 30 days Mar 31 -> Apr 30 unused
    assert refund.period_key == "20240331T120000Z" and refund.payment_intent_id == "pi_sub_1_3"
    d.advance(at(2024, 6, 1))
    assert len(d.charges) == 3


def test_cancel_at_a_later_anchor_date_ends_there_without_charging_the_next_period():
    d = active()
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 31, 12)), MID)
    d.advance(END)
    assert d.state.status == Status.NON_RENEWING  # cancel_at == the new period end
    d.advance(at(2024, 3, 31, 12))
    assert d.state.status == Status.CANCELED
    assert len(d.charges) == 2


def test_cancel_at_period_end_after_an_at_date_beyond_brings_the_end_forward():
    d = active()
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 5, 1)), MID)
    d.request(Cancel(mode="at_period_end"), MID + SECOND)
    assert d.state.status == Status.NON_RENEWING and d.state.cancel_at == END
    d.advance(END)
    assert d.state.status == Status.CANCELED and len(d.charges) == 1


def test_cancel_at_date_beyond_after_at_period_end_returns_to_active():
    d = active()
    d.request(Cancel(mode="at_period_end"), MID)
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 10)), MID + SECOND)
    assert d.state.status == Status.ACTIVE and d.state.cancel_at_period_end is False
    d.advance(END)
    assert len(d.charges) == 2 and d.state.status == Status.NON_RENEWING


def test_cancel_request_carries_feedback_into_the_details():
    d = active()
    d.request(Cancel(mode="at_period_end", feedback="switched_service", comment="bye",
                     requested_by=Actor(kind="operator", id="op_7")), MID)
    c = d.state.cancellation
    assert (c.feedback, c.comment, c.requested_by.kind, c.reason) == (
        "switched_service", "bye", "operator", "cancellation_requested")
    assert d.events[-1].request == Actor(kind="operator", id="op_7")


def test_default_cancel_mode_is_at_period_end():
    assert Cancel().mode == "at_period_end" and Cancel().requested_by == Actor()
    d = active()
    d.request(Cancel(), MID)
    assert d.state.cancel_at_period_end and d.state.status == Status.NON_RENEWING
    assert d.events[-1].request == Actor(kind="customer", id=None)


def test_event_actor_is_the_requester_not_the_creator():
    d = active()
    d.request(Cancel(mode="immediately", requested_by=Actor(kind="api_key", id="key_1")), MID)
    assert d.events[-1].request == Actor(kind="api_key", id="key_1")
    assert d.events[0].request == CUSTOMER


def test_cancel_at_a_date_one_second_before_the_period_end():
    d = active()
    d.request(Cancel(mode="at_date", cancel_at=END - SECOND), MID)
    assert d.state.status == Status.NON_RENEWING and not d.state.cancel_at_period_end
    d.advance(END)
    assert d.state.status == Status.CANCELED and d.state.ended_at == END - SECOND
    assert len(d.charges) == 1


@given(amount=st.integers(1, 10**7), seconds=st.integers(0, 29 * 86400 - 1))
@settings(max_examples=examples(60), deadline=None)
def test_prorated_refund_is_the_exact_floor_for_whole_second_instants(amount, seconds):
    plan = PRO.model_copy(update={"amount": amount})
    d = Driver.create(T0, plan=plan)
    when = T0 + timedelta(seconds=seconds)
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="prorated"), when)
    expected = amount * ((END - when) // SECOND) // ((END - T0) // SECOND)
    refunds = d.of(Refund, d.since(mark))
    assert [r.amount for r in refunds] == ([expected] if expected else [])
