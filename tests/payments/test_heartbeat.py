"""The heartbeat pump of the synchronous Stripe activities, and its contract with the workflow:
every activity that heartbeats gets a heartbeat timeout, and every Stripe activity heartbeats."""

from __future__ import annotations

import threading

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.heartbeat import INTERVAL, heartbeating, pump
from activities.payments import PaymentActivities
from workflows.stripe_calls import HEARTBEAT_TIMEOUT, STRIPE_ACTIVITIES


def _pumps() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("heartbeat-")]


def test_a_running_activity_heartbeats_until_it_returns():
    env = ActivityEnvironment()
    beats = threading.Semaphore(0)
    env.on_heartbeat = lambda *details: beats.release()

    def slow_call() -> str:  # blocked in Stripe: it cannot heartbeat itself
        with pump(interval=0.01):
            assert all(beats.acquire(timeout=10) for _ in range(3)), "no heartbeats"
        return "done"

    assert env.run(slow_call) == "done"
    assert _pumps() == []  # the pump stopped with the call


def test_the_pump_stops_when_the_activity_raises():
    env = ActivityEnvironment()
    beat = threading.Event()
    env.on_heartbeat = lambda *details: beat.set()

    @heartbeating
    def failing() -> None:
        assert beat.wait(10), "no heartbeat"
        raise RuntimeError("stripe is down")

    with pytest.raises(RuntimeError, match="stripe is down"):
        env.run(failing)
    assert _pumps() == []


def test_outside_an_activity_the_call_just_runs():
    assert heartbeating(lambda x: x + 1)(1) == 2
    assert _pumps() == []


def test_every_stripe_activity_heartbeats_and_gets_a_heartbeat_timeout():
    methods = [getattr(PaymentActivities, name) for name in dir(PaymentActivities)
               if hasattr(getattr(PaymentActivities, name), "__temporal_activity_definition")]
    names = {activity._Definition.must_from_callable(m).name for m in methods}
    assert names == STRIPE_ACTIVITIES
    assert all(getattr(m, "heartbeats", False) for m in methods)
    assert INTERVAL * 5 <= HEARTBEAT_TIMEOUT.total_seconds()  # a late beat is not a timeout
