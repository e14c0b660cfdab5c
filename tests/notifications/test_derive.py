"""Which emails and webhooks each D8 event causes (pure), on events the real core emits."""

from __future__ import annotations

from datetime import timedelta

from domain.commands import Emit
from domain.requests import Cancel, Postpone, Reactivate
from notifications.derive import derive
from tests.domain.helpers import CUSTOMER, DECLINE, Driver, at

NOTICE = timedelta(days=3)
EMAIL = "ada@example.com"


def events(driver: Driver, mark: int = 0):
    return [c.event for c in driver.since(mark) if isinstance(c, Emit)]


def emails(event, notice=NOTICE):
    return [m for m in derive(event, email=EMAIL, endpoint_ids=[], ending_notice=notice)]


def test_every_event_goes_to_every_endpoint_once():
    d = Driver.create(at(2026, 1, 10))
    d.advance(at(2026, 2, 10))
    evs = events(d)
    assert {e.type for e in evs} >= {"customer.subscription.created", "invoice.paid"}
    for event in evs:
        hooks = [m for m in derive(event, email=None, endpoint_ids=["we_a", "we_b"],
                                   ending_notice=NOTICE) if m.channel == "webhook"]
        assert [m.recipient for m in hooks] == ["we_a", "we_b"]
        assert all(m.payload["event"]["id"] == event.id and m.due == event.created
                   for m in hooks)
        assert len({m.dedupe_key(event.id) for m in hooks}) == 2


def test_renewals_send_only_the_payment_receipt():
    """Each paid period (the first and two renewals) is confirmed by one receipt email; the
    period changes themselves send nothing."""
    d = Driver.create(at(2026, 1, 10))
    d.advance(at(2026, 3, 10))
    sent = [(e.type, [m.kind for m in emails(e)]) for e in events(d)]
    assert [kinds for type_, kinds in sent if type_ == "invoice.paid"] == [
        ["payment_receipt"]] * 3
    assert all(kinds == [] for type_, kinds in sent if type_ != "invoice.paid")


def test_scheduled_cancel_confirms_the_exact_end_date_and_times_the_ending_notice():
    d = Driver.create(at(2026, 1, 10, 9, 30))
    mark = len(d.log)
    d.request(Cancel(mode="at_period_end", requested_by=CUSTOMER), at(2026, 1, 20))
    (updated,) = events(d, mark)
    confirmation, notice = emails(updated)
    assert confirmation.kind == "cancel_confirmation" and confirmation.recipient == EMAIL
    assert confirmation.due == at(2026, 1, 20)
    assert "February 10, 2026 at 09:30:00 UTC" in confirmation.payload["text"]
    assert confirmation.payload["about"] == "2026-02-10T09:30:00+00:00"
    assert notice.kind == "ending_notice" and notice.due == at(2026, 2, 7, 9, 30)
    assert confirmation.dedupe_key(updated.id) != notice.dedupe_key(updated.id)


def test_ending_notice_is_clamped_to_the_event_when_the_end_is_near():
    d = Driver.create(at(2026, 1, 10))
    mark = len(d.log)
    d.request(Cancel(mode="at_period_end"), at(2026, 2, 9))
    (updated,) = events(d, mark)
    notice = [m for m in emails(updated) if m.kind == "ending_notice"][0]
    assert notice.due == at(2026, 2, 9)


def test_postpone_confirms_the_new_date_reactivation_sends_nothing():
    d = Driver.create(at(2026, 1, 10))
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 11))
    mark = len(d.log)
    d.request(Postpone(cancel_at=at(2026, 3, 1)), at(2026, 1, 12))
    (moved,) = events(d, mark)
    kinds = {m.kind: m for m in emails(moved)}
    assert set(kinds) == {"cancel_confirmation", "ending_notice"}
    assert kinds["ending_notice"].due == at(2026, 2, 26)
    mark = len(d.log)
    d.request(Reactivate(), at(2026, 1, 13))
    (reactivated,) = events(d, mark)
    assert reactivated.type == "customer.subscription.updated"
    assert emails(reactivated) == []


def test_immediate_cancel_by_request_confirms_access_ended():
    d = Driver.create(at(2026, 1, 10))
    mark = len(d.log)
    d.request(Cancel(mode="immediately"), at(2026, 1, 15, 8))
    (deleted,) = events(d, mark)
    (confirmation,) = emails(deleted)
    assert confirmation.kind == "cancel_confirmation"
    assert "cancelled" in confirmation.payload["subject"]
    assert "January 15, 2026 at 08:00:00 UTC" in confirmation.payload["text"]


def test_scheduled_cancel_taking_effect_sends_ended_not_another_confirmation():
    d = Driver.create(at(2026, 1, 10))
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 11))
    mark = len(d.log)
    d.advance(at(2026, 2, 11))
    deleted = [e for e in events(d, mark) if e.type == "customer.subscription.deleted"][0]
    assert deleted.request is None
    assert [m.kind for m in emails(deleted)] == ["subscription_ended"]


def test_dunning_failures_and_the_automatic_cancel():
    d = Driver.create(at(2026, 1, 10))
    d.script(DECLINE, DECLINE, DECLINE, DECLINE)
    mark = len(d.log)
    d.advance(at(2026, 4, 1))
    evs = events(d, mark)
    failed = [e for e in evs if e.type == "invoice.payment_failed"]
    assert len(failed) == 4
    assert all([m.kind for m in emails(e)] == ["payment_failed"] for e in failed)
    assert "attempt 2" in emails(failed[1])[0].payload["text"]
    deleted = [e for e in evs if e.type == "customer.subscription.deleted"][0]
    assert [m.kind for m in emails(deleted)] == ["auto_cancel"]


def test_no_address_no_email_but_webhooks_still_go():
    d = Driver.create(at(2026, 1, 10))
    mark = len(d.log)
    d.request(Cancel(mode="immediately"), at(2026, 1, 15))
    (deleted,) = events(d, mark)
    messages = derive(deleted, email=None, endpoint_ids=["we_a"], ending_notice=NOTICE)
    assert [m.channel for m in messages] == ["webhook"]


def _declined_renewal(code: str) -> list:
    d = Driver.create(at(2026, 1, 10))
    d.decline_code = code
    d.script(DECLINE)
    mark = len(d.log)
    d.advance(at(2026, 2, 10))
    return events(d, mark)


def test_a_hard_decline_asks_for_a_new_payment_method_by_the_end_of_the_wait():
    """Rule version 3 (D9): no "we will retry it"; the date the subscription ends without a
    new card, and the payment link when one is configured."""
    evs = _declined_renewal("lost_card")
    (failed,) = [e for e in evs if e.type == "invoice.payment_failed"]
    (mail,) = emails(failed)
    assert mail.kind == "payment_method_required"
    assert mail.payload["about"] == failed.data["payment_required"]["until"]
    assert "we will not retry it" in mail.payload["text"]
    assert "February 15, 2026 at 00:00:00 UTC" in mail.payload["text"]  # the grace end
    assert "lost_card" in mail.payload["text"] and "here:" not in mail.payload["text"]
    (linked,) = [m for m in derive(failed, email=EMAIL, endpoint_ids=[], ending_notice=NOTICE,
                                   payment_link="https://pay.example.com/{customer}/{subscription}")
                 if m.channel == "email"]
    assert "Add it here: https://pay.example.com/cus_1/sub_1" in linked.payload["text"]
    assert [m.kind for e in evs if e is not failed for m in emails(e)] == []


def test_authentication_required_tells_the_customer_what_to_do():
    evs = _declined_renewal("authentication_required")
    assert "invoice.payment_failed" not in [e.type for e in evs]
    (action,) = [e for e in evs if e.type == "invoice.payment_action_required"]
    (mail,) = emails(action)
    assert mail.kind == "payment_action_required"
    assert mail.payload["subject"] == "Action required: confirm your payment"
    assert "3-D Secure" in mail.payload["text"] and "will not retry" in mail.payload["text"]
    (linked,) = derive(action, email=EMAIL, endpoint_ids=[], ending_notice=NOTICE,
                       payment_link="https://pay.example.com/{subscription}")
    assert "Confirm it here: https://pay.example.com/sub_1" in linked.payload["text"]


def test_a_soft_decline_keeps_the_retry_email():
    evs = _declined_renewal("insufficient_funds")
    (failed,) = [e for e in evs if e.type == "invoice.payment_failed"]
    assert [m.kind for m in emails(failed)] == ["payment_failed"]
    assert "we will retry it" in emails(failed)[0].payload["text"]
