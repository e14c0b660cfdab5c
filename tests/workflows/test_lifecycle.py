"""Lifecycle scenarios on the real worker (D1-D5, D8, D10, D11): each test drives one
subscription through workflows.client_ops on the time-skipping server and checks the state,
the charges recorded (and made at localstripe) and the D8 events in the event store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import ENDED_MESSAGE
from domain.model import Actor, Status
from domain.requests import Cancel, Postpone, Reactivate
from eventlog import store as events_store
from tests.workflows.scenario import Scenario

pytestmark = pytest.mark.temporal

SECOND = timedelta(seconds=1)
OPERATOR = Actor(kind="operator", id="op_1")


def _paid_periods(scenario: Scenario) -> list[str]:
    return [c.period_key for c in scenario.charges("succeeded")]


def _types(scenario: Scenario) -> list[str]:
    return [e.type for e in scenario.events()]


async def test_cancel_one_second_before_the_end_takes_effect_then_without_renewal(scenario):
    """D1/D2: a cancel at period end made in the last second keeps the date and access, then
    ends the subscription at that date; D8: updated at once (requested), deleted at the end
    (automatic); no renewal is charged."""
    first = await scenario.start()
    end = first.current_period_end
    await scenario.sleep_until(end - SECOND)

    cancelled = await scenario.send(Cancel(mode="at_period_end", requested_by=OPERATOR))
    assert cancelled.status == Status.NON_RENEWING
    assert cancelled.cancel_at == end and cancelled.cancel_at_period_end
    assert cancelled.current_period_end == end
    assert cancelled.has_access(await scenario.now())
    assert cancelled.renewal_line == f"Cancelling on {end.isoformat()}"

    await scenario.sleep_until(end + SECOND)
    final = await scenario.finished()
    assert final.status == Status.CANCELED and final.ended_at == end
    assert not final.has_access(end)
    assert _paid_periods(scenario) == [first.period_key]
    assert [c.purpose for c in scenario.charges()] == ["first_period"]

    events = scenario.events()
    assert [e.type for e in events] == [
        "customer.subscription.created", "invoice.paid", "customer.subscription.updated",
        "customer.subscription.updated", "customer.subscription.deleted"]
    scheduled, deleted = events[-2], events[-1]
    assert scheduled.request == OPERATOR  # D8: requested, by whom
    assert scheduled.previous_attributes["cancel_at_period_end"] is False
    assert scheduled.data["cancel_at_period_end"] is True
    assert deleted.request is None  # D8: automatic, the scheduled end took effect
    assert deleted.created == end and deleted.data["status"] == "canceled"
    view = events_store.get_view(scenario.engine, scenario.sub_id)  # the read model agrees
    assert (view.status, view.ended_at, view.last_event_seq) == ("canceled", end, len(events))


async def test_reactivate_at_the_last_moment_keeps_the_renewal_date_and_charges_nothing(
        scenario):
    """D3/D11: reactivated within the last second before the end, the subscription is active
    again, renews on the same date and is charged only at that renewal."""
    first = await scenario.start()
    end = first.current_period_end
    await scenario.send(Cancel(mode="at_period_end"))
    await scenario.sleep_until(end - SECOND)

    back = await scenario.send(Reactivate())
    assert back.status == Status.ACTIVE and back.cancel_at is None
    assert back.current_period_end == end and back.renewal_line == f"Renewing on {end.isoformat()}"
    assert len(scenario.charges()) == 1  # D3: no new charge now

    await scenario.sleep_until(end + SECOND)
    renewed = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
    assert renewed.status == Status.ACTIVE and renewed.current_period_start == end
    assert renewed.current_period_end == first.anchor_boundary(2)
    assert _paid_periods(scenario) == [first.period_key, renewed.period_key]
    assert [c.purpose for c in scenario.charges()] == ["first_period", "renewal"]


async def test_reactivate_one_moment_too_late_is_refused_and_changes_nothing(scenario):
    """D4: once the scheduled cancellation took effect, reactivation is refused with the
    rule's message (update and signal alike) and the ended state stays as it was."""
    first = await scenario.start()
    end = first.current_period_end
    await scenario.send(Cancel(mode="at_period_end"))
    await scenario.sleep_until(end)
    ended = await scenario.until(lambda s: s.ended)

    with pytest.raises(RequestRefused) as refused:
        await scenario.send(Reactivate())
    assert refused.value.code == "subscription_ended"
    assert refused.value.message == ENDED_MESSAGE == (
        "ended subscriptions cannot be reactivated; create a new subscription")
    assert await scenario.state() == ended == await scenario.finished()
    assert ended.ended_at == end and len(scenario.charges()) == 1
    assert _types(scenario)[-1] == "customer.subscription.deleted"


async def test_postpone_beyond_the_term_then_reactivate_in_the_extension(scenario):
    """D5: a cancellation postponed past the paid-through date stays non_renewing through an
    uncharged extension; D3/D11: reactivating there returns to active, renewing at the next
    anchor date, and only that renewal is charged."""
    first = await scenario.start()
    end = first.current_period_end
    later = end + timedelta(days=10)
    await scenario.send(Cancel(mode="at_period_end"))
    postponed = await scenario.send(Postpone(cancel_at=later))
    assert postponed.status == Status.NON_RENEWING and postponed.cancel_at == later
    assert not postponed.cancel_at_period_end
    assert postponed.renewal_line == f"Cancelling on {later.isoformat()}"

    await scenario.sleep_until(end + timedelta(days=5))
    extended = await scenario.until(lambda s: s.in_extension)
    assert extended.status == Status.NON_RENEWING and extended.has_access(await scenario.now())
    assert extended.current_period_end == later
    assert len(scenario.charges()) == 1  # D5: the extension is not charged

    back = await scenario.send(Reactivate())
    assert back.status == Status.ACTIVE and back.cancel_at is None and not back.in_extension
    assert back.current_period_end == first.anchor_boundary(2)  # the same anchor
    assert len(scenario.charges()) == 1

    await scenario.sleep_until(first.anchor_boundary(2) + SECOND)
    renewed = await scenario.until(lambda s: s.period_index == 2 and s.awaiting_charge is None)
    assert renewed.status == Status.ACTIVE
    assert renewed.current_period_start == first.anchor_boundary(2)
    charges = scenario.charges()
    assert [(c.purpose, c.status) for c in charges] == [("first_period", "succeeded"),
                                                       ("renewal", "succeeded")]
    assert charges[1].period_key == renewed.period_key


async def test_postpone_within_the_term_then_reactivate(scenario):
    """D5 then D3: a scheduled end moved to another date inside the paid term, then removed:
    active, same renewal date, nothing charged until then."""
    first = await scenario.start()
    end = first.current_period_end
    await scenario.send(Cancel(mode="at_date", cancel_at=end - timedelta(days=20)))
    moved = await scenario.send(Postpone(cancel_at=end - timedelta(days=2)))
    assert moved.status == Status.NON_RENEWING and moved.cancel_at == end - timedelta(days=2)
    await scenario.sleep_until(end - timedelta(days=3))
    back = await scenario.send(Reactivate())
    assert back.status == Status.ACTIVE and back.current_period_end == end
    await scenario.sleep_until(end + SECOND)
    renewed = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
    assert renewed.status == Status.ACTIVE
    assert [c.purpose for c in scenario.charges("succeeded")] == ["first_period", "renewal"]


async def test_cancel_at_a_date_inside_the_period(scenario):
    """D1: an at-date cancel inside the period ends the subscription on that date, with no
    renewal charged; the end is automatic (D8)."""
    first = await scenario.start()
    at = first.current_period_start + timedelta(days=10, hours=3)
    cancelled = await scenario.send(Cancel(mode="at_date", cancel_at=at))
    assert cancelled.status == Status.NON_RENEWING and cancelled.cancel_at == at
    assert not cancelled.cancel_at_period_end

    await scenario.sleep_until(first.current_period_end + timedelta(days=40))
    final = await scenario.finished()
    assert final.ended_at == at and final.current_period_end == first.current_period_end
    assert [c.purpose for c in scenario.charges()] == ["first_period"]
    deleted = scenario.events()[-1]
    assert deleted.type == "customer.subscription.deleted" and deleted.request is None
    assert deleted.created == at


async def test_cancel_at_a_date_beyond_the_period_renews_up_to_it_then_ends(scenario):
    """D1: an at-date cancel beyond the current period leaves renewals running (active, each
    charged) until the period containing the date, which is non_renewing and ends on it."""
    first = await scenario.start()
    at = first.anchor_boundary(2) + timedelta(days=10)
    cancelled = await scenario.send(Cancel(mode="at_date", cancel_at=at))
    assert cancelled.status == Status.ACTIVE and cancelled.cancel_at == at
    assert cancelled.renewal_line == f"Cancelling on {at.isoformat()}"

    await scenario.sleep_until(first.anchor_boundary(1) + SECOND)
    second = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
    assert second.status == Status.ACTIVE and second.cancel_at == at

    await scenario.sleep_until(first.anchor_boundary(2) + SECOND)
    third = await scenario.until(lambda s: s.period_index == 2 and s.awaiting_charge is None)
    assert third.status == Status.NON_RENEWING  # the date is now inside the period

    await scenario.sleep_until(at + timedelta(days=60))
    final = await scenario.finished()
    assert final.ended_at == at
    assert [(c.purpose, c.period_key) for c in scenario.charges("succeeded")] == [
        ("first_period", first.period_key), ("renewal", second.period_key),
        ("renewal", third.period_key)]
    assert len(scenario.charges()) == 3
    assert scenario.events()[-1].type == "customer.subscription.deleted"


async def test_future_subscription_can_only_be_cancelled_immediately(scenario):
    """D10: a subscription starting in the future is scheduled; a cancel at period end or at a
    date is refused, an immediate cancel ends it without any charge, requested (D8)."""
    start = await scenario.now() + timedelta(days=10)
    scheduled = await scenario.start(start_date=start, wait_status="scheduled")
    assert scheduled.start_date == start and scheduled.renewal_line == (
        f"Starts on {start.isoformat()}")

    for request in (Cancel(mode="at_period_end"),
                    Cancel(mode="at_date", cancel_at=start + timedelta(days=3))):
        with pytest.raises(RequestRefused) as refused:
            await scenario.send(request)
        assert refused.value.code == "not_started" and "D10" in refused.value.message
    assert await scenario.state() == scheduled

    ended = await scenario.send(Cancel(mode="immediately", requested_by=OPERATOR))
    assert ended.status == Status.CANCELED
    await scenario.sleep_until(start + timedelta(days=1))
    assert (await scenario.state()).status == Status.CANCELED
    assert scenario.charges() == [] and scenario.stripe_intents() == []
    events = scenario.events()
    assert [e.type for e in events] == ["customer.subscription.created",
                                        "customer.subscription.deleted"]
    assert events[-1].request == OPERATOR


async def test_future_subscription_starts_on_its_date_and_is_charged_then(scenario):
    """D10 counterpart: left alone, a scheduled subscription starts on its start date, which
    becomes its billing anchor, and its first period is charged then, not before."""
    start = await scenario.now() + timedelta(days=10)
    await scenario.start(start_date=start, wait_status="scheduled")
    assert scenario.charges() == []
    await scenario.sleep_until(start + SECOND)
    active = await scenario.until(lambda s: s.status == Status.ACTIVE)
    assert active.billing_cycle_anchor == active.current_period_start == start
    assert [(c.purpose, c.period_key) for c in scenario.charges("succeeded")] == [
        ("first_period", active.period_key)]
    assert _types(scenario)[:3] == ["customer.subscription.created", "invoice.paid",
                                    "customer.subscription.updated"]


async def test_immediate_cancel_is_requested_and_ended_subscriptions_refuse_everything(
        scenario):
    """D1/D6/D8: an immediate cancel ends at once, the deleted event names who asked; D4:
    afterwards every request is refused."""
    first = await scenario.start()
    ended = await scenario.send(Cancel(mode="immediately", requested_by=OPERATOR,
                                       feedback="too_expensive"))
    assert ended.status == Status.CANCELED and ended.cancellation.feedback == "too_expensive"
    assert ended.ended_at is not None and ended.ended_at < first.current_period_end
    deleted = scenario.events()[-1]
    assert deleted.type == "customer.subscription.deleted" and deleted.request == OPERATOR
    for request in (Cancel(mode="immediately"), Reactivate(),
                    Postpone(cancel_at=first.current_period_end)):
        with pytest.raises(RequestRefused) as refused:
            await scenario.send(request)
        assert refused.value.code == "subscription_ended"
    await scenario.sleep_until(first.current_period_end + SECOND)
    assert len(scenario.charges()) == 1 and await scenario.state() == ended


async def test_signals_and_updates_share_one_path_and_an_invalid_signal_changes_nothing(
        scenario):
    """Signals and updates apply the same rules: cancel and reactivate by signal work; a
    refused signal is recorded in ``rejected_signals`` and changes nothing; the same request
    as an update is refused with the reason."""
    first = await scenario.start()
    await scenario.signal(Cancel(mode="at_period_end"))
    cancelled = await scenario.until(lambda s: s.status == Status.NON_RENEWING)
    assert cancelled.cancel_at == first.current_period_end
    await scenario.signal(Reactivate())
    active = await scenario.until(lambda s: s.status == Status.ACTIVE)
    assert active.cancel_at is None and await scenario.rejected() == []
    events_before = _types(scenario)

    await scenario.signal(Reactivate())  # nothing to reactivate
    await scenario.signal(Postpone(cancel_at=first.current_period_end + timedelta(days=1)))
    rejected = await scenario.until_rejected(2)
    assert [(r.kind, r.code) for r in rejected] == [("reactivate", "nothing_to_reactivate"),
                                                   ("postpone", "nothing_to_postpone")]
    assert await scenario.state() == active
    assert _types(scenario) == events_before

    with pytest.raises(RequestRefused) as refused:
        await scenario.send(Reactivate())
    assert refused.value.code == "nothing_to_reactivate"
    with pytest.raises(RequestInvalid) as invalid:
        await scenario.send(Cancel(mode="at_date", cancel_at=first.current_period_start))
    assert invalid.value.field == "cancel_at"
    assert await scenario.state() == active and len(await scenario.rejected()) == 2
    assert len(scenario.charges()) == 1


async def test_a_signal_to_an_ended_subscription_is_refused_like_an_update(scenario):
    """D4 through both entry points: once ended, a signal is refused at once with the same
    code and message as the update, instead of a transport error."""
    await scenario.start()
    await scenario.send(Cancel(mode="immediately"))
    ended = await scenario.finished()
    for deliver in (scenario.send, scenario.signal):
        with pytest.raises(RequestRefused) as refused:
            await deliver(Reactivate())
        assert (refused.value.code, refused.value.message) == ("subscription_ended",
                                                               ENDED_MESSAGE)
    assert await scenario.state() == ended
