"""The claim on a Stripe event is a lease, on SQLite and PostgreSQL: a live lease turns other
deliveries away (busy, with the seconds left), an expired one is taken over by exactly one of
several concurrent deliveries, a released one at once, and a finished event stays done for good.
Time is passed in (``now``), so expiry needs no waiting."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from payments.models import StripeCustomer
from store.engine import get_engine
from store.migrate import alembic_config, upgrade
from webhooks import customers, store

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=60)
CREATED = datetime(2029, 12, 31, tzinfo=UTC)


def claim(engine, event_id: str, now: datetime) -> store.Claim:
    return store.claim(engine, event_id, "customer.updated", CREATED, lease=LEASE, now=now)


def test_a_live_lease_turns_others_away_and_finish_is_final(db_url):
    engine = get_engine(db_url)
    first = claim(engine, "evt_1", T0)
    assert (first.status, first.attempts) == ("new", 1)
    busy = claim(engine, "evt_1", T0 + timedelta(seconds=20.5))
    assert (busy.status, busy.retry_after) == ("busy", 40)
    assert claim(engine, "evt_1", T0 + LEASE - timedelta(milliseconds=1)).status == "busy"

    assert store.finish(engine, first, "handled")
    for later in (T0 + timedelta(seconds=1), T0 + LEASE * 100):
        assert claim(engine, "evt_1", later).status == "done"
    row = store.get(engine, "evt_1")
    assert (row.outcome, row.lease_until, row.attempts) == ("handled", None, 1)
    assert not store.finish(engine, first, "again") and not store.release(engine, first)
    assert store.get(engine, "evt_1").outcome == "handled"


def test_an_expired_lease_is_taken_over_and_the_dead_holder_can_no_longer_finish(db_url):
    engine = get_engine(db_url)
    dead = claim(engine, "evt_2", T0)
    taken = claim(engine, "evt_2", T0 + LEASE)
    assert (taken.status, taken.attempts) == ("taken_over", 2)
    assert store.get(engine, "evt_2").lease_until == T0 + 2 * LEASE
    assert claim(engine, "evt_2", T0 + LEASE + timedelta(seconds=1)).status == "busy"

    # The first holder was only slow: it can neither finish nor release the new holder's claim.
    assert not store.release(engine, dead) and not store.finish(engine, dead, "late")
    assert claim(engine, "evt_2", T0 + LEASE + timedelta(seconds=1)).status == "busy"
    assert store.finish(engine, taken, "handled")
    assert claim(engine, "evt_2", T0 + 10 * LEASE).status == "done"
    assert store.get(engine, "evt_2").outcome == "handled"


def test_a_released_claim_is_taken_over_at_once(db_url):
    engine = get_engine(db_url)
    failed = claim(engine, "evt_3", T0)
    assert store.release(engine, failed)
    again = claim(engine, "evt_3", T0 + timedelta(seconds=1))
    assert (again.status, again.attempts) == ("taken_over", 2)


def _race(engine, event_id: str, now: datetime, n: int = 6) -> list[store.Claim]:
    barrier = threading.Barrier(n)
    results: list[store.Claim] = []

    def deliver() -> None:
        barrier.wait(10)
        results.append(claim(engine, event_id, now))

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == n
    return results


def test_concurrent_deliveries_exactly_one_claims_and_one_takes_over(db_url):
    engine = get_engine(db_url)
    first = _race(engine, "evt_4", T0)
    assert sorted(c.status for c in first) == ["busy"] * 5 + ["new"]

    after = _race(engine, "evt_4", T0 + LEASE + timedelta(seconds=5))
    assert sorted(c.status for c in after) == ["busy"] * 5 + ["taken_over"]
    assert {c.attempts for c in after if c.status == "taken_over"} == {2}
    assert store.get(engine, "evt_4").attempts == 2


def test_the_event_that_changes_the_default_remembers_it(db_url):
    """adopt_default records the change on the event in its own transaction: a takeover finds
    the retry it owes even if the handler died right after."""
    engine = get_engine(db_url)
    with Session(engine) as session:
        session.add(StripeCustomer(customer_id="cus_a", stripe_customer_id="cus_stripe_a",
                                   default_payment_method="pm_old"))
        session.commit()
    claim(engine, "evt_5", T0)
    claim(engine, "evt_6", T0)
    assert customers.adopted_by(engine, "evt_5") is None
    assert customers.adopt_default(engine, "cus_a", "pm_new", "evt_5")
    assert customers.adopted_by(engine, "evt_5") == "pm_new"
    # Another event announcing the same change finds nothing to change and owes nothing.
    assert not customers.adopt_default(engine, "cus_a", "pm_new", "evt_6")
    assert customers.adopted_by(engine, "evt_6") is None
    assert customers.adopted_by(engine, "evt_5") == "pm_new"


def test_events_claimed_before_leases_existed_are_no_longer_lost(db_url):
    """0007_webhook_leases keeps the rows: a finished event stays done, one whose handler died
    before the upgrade (no outcome, claimed forever until now) is taken over by its next
    delivery."""
    engine = get_engine(db_url)
    cfg = alembic_config(db_url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0005_webhooks")
    with engine.begin() as connection:
        for event_id, outcome in (("evt_done", "handled"), ("evt_stuck", None)):
            connection.execute(text(
                "INSERT INTO stripe_webhook_event (id, type, created, received_at, outcome) "
                "VALUES (:id, 'customer.updated', :at, :at, :outcome)"),
                {"id": event_id, "at": CREATED.replace(tzinfo=None), "outcome": outcome})
    upgrade(db_url)
    assert claim(engine, "evt_done", T0).status == "done"
    taken = claim(engine, "evt_stuck", T0)
    assert (taken.status, taken.attempts) == ("taken_over", 2)
