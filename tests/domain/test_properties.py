"""Properties of random runs: requests, time steps and payment outcomes in any order.

A run creates a subscription (any plan, maybe a future start, maybe a trial), then plays random
actions through the Driver (the workflow's way of driving the core): waits (often exactly to the
next wake-up, or one second either side of it), cancel/reactivate/postpone/payment-method
requests with dates around the interesting instants, and scripted charge outcomes. After every
action the invariants below are checked.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain import lifecycle
from domain.errors import RequestRefused
from domain.model import BillingPolicy, Status, SubscriptionState
from domain.periods import boundary, period_key
from domain.requests import Cancel, PaymentMethodUpdated, Postpone, Reactivate
from tests.domain.helpers import (
    DAILY,
    DECLINE,
    FREE,
    OK,
    PRO,
    WEEKLY,
    Charge,
    Driver,
    GrantCredits,
    Refund,
    at,
    examples,
)

T0 = at(2024, 1, 31, 12)
S = timedelta(seconds=1)
KEY = re.compile(r"^(?P<sub>sub_1):(?P<period>\d{8}T\d{6}Z):(?P<attempt>[1-9]\d*)$")

# Strategies ------------------------------------------------------------------------------------

SECONDS = st.sampled_from([-86400, -1, 0, 1, 3600, 86400, 3 * 86400, 10 * 86400])
WHEN = st.one_of(
    st.tuples(st.just("rel"), SECONDS),  # now + seconds
    st.tuples(st.just("end"), st.sampled_from([-1, 0, 1])),  # current period end +- 1 s
    st.tuples(st.just("periods"), st.sampled_from([1, 2, 3])),  # a few periods ahead
)
CANCEL_SCHEDULED = st.tuples(st.just("cancel"), st.sampled_from(["at_period_end", "at_date"]),
                             st.one_of(st.none(), WHEN, WHEN, WHEN),
                             st.sampled_from(["none", "prorated", "full"]))
CANCEL_ANY = st.tuples(st.just("cancel"), st.sampled_from(["immediately", "at_period_end",
                                                           "at_date"]),
                       st.one_of(st.none(), WHEN), st.sampled_from(["none", "prorated", "full"]))
# one_of picks a branch uniformly: repeated branches weigh the mix towards scheduled
# cancellations and what follows them (postpone, reactivate).
AT_PERIOD_END = st.just(("cancel", "at_period_end", None, "none"))
POSTPONE = st.tuples(st.just("postpone"), WHEN)
POSTPONE_BEYOND = st.tuples(st.just("postpone"), st.tuples(st.just("periods"),
                                                            st.sampled_from([1, 2, 3])))
REQUEST = st.one_of(
    AT_PERIOD_END, AT_PERIOD_END, CANCEL_SCHEDULED, CANCEL_SCHEDULED, CANCEL_ANY,
    st.tuples(st.just("reactivate")), st.tuples(st.just("reactivate")),
    POSTPONE, POSTPONE, POSTPONE_BEYOND, POSTPONE_BEYOND,
    st.tuples(st.just("payment_method")),
)
WAIT = st.one_of(
    st.tuples(st.just("wake"), st.sampled_from([-1, 0, 0, 1])),  # to the next wake-up +- 1 s
    st.tuples(st.just("for"), st.sampled_from([0, 1, 3600, 86400, 3 * 86400, 8 * 86400])),
    st.tuples(st.just("periods"), st.sampled_from([1, 2])),
)
ACTION = st.one_of(st.tuples(st.just("wait"), WAIT), st.tuples(st.just("request"), REQUEST),
                   st.tuples(st.just("request"), REQUEST))
POLICY = st.sampled_from([
    BillingPolicy(),
    BillingPolicy(final_action="unpaid"),
    BillingPolicy(retry_delays=(timedelta(hours=6),), grace_period=timedelta(hours=1)),
])


@st.composite
def runs(draw):
    plan = draw(st.sampled_from([PRO, PRO, PRO, WEEKLY, DAILY, FREE]))
    start = draw(st.sampled_from([None, None, None, T0 + timedelta(days=3)]))
    trial = draw(st.sampled_from([None, None, None, None, timedelta(days=10),
                                  timedelta(days=40)]))
    trial_end = None if trial is None else (start or T0) + trial
    # Mostly successful payments, with runs of declines to reach dunning, unpaid and the end.
    first = draw(st.sampled_from([OK, OK, OK, DECLINE]))
    outcomes = [first] + draw(st.lists(st.sampled_from([OK, OK, DECLINE]), max_size=14))
    default = draw(st.sampled_from([OK, OK, OK, DECLINE]))
    actions = draw(st.lists(ACTION, min_size=6, max_size=24))
    return plan, start, trial_end, draw(POLICY), outcomes, default, actions


# Resolving drawn specs against the live state ---------------------------------------------------


def period_length(s: SubscriptionState) -> timedelta:
    i = s.period_index
    return s.anchor_boundary(i + 1) - s.anchor_boundary(i)


def instant(spec, s: SubscriptionState, now: datetime) -> datetime:
    kind, n = spec
    if kind == "rel":
        return now + n * S
    if kind == "end":
        return s.current_period_end + n * S
    return now + period_length(s) * n + timedelta(hours=5)


def build(spec, s: SubscriptionState, now: datetime):
    if spec[0] == "cancel":
        _, mode, when, refund = spec
        return Cancel(mode=mode, refund=refund,
                      cancel_at=None if when is None else instant(when, s, now))
    if spec[0] == "reactivate":
        return Reactivate()
    if spec[0] == "postpone":
        return Postpone(cancel_at=instant(spec[1], s, now))
    return PaymentMethodUpdated()


def wait_target(spec, s: SubscriptionState, now: datetime) -> datetime:
    kind, n = spec
    if kind == "wake":
        wake = lifecycle.next_wakeup(s)
        target = now + timedelta(days=1) if wake is None else wake + n * S
    elif kind == "for":
        target = now + n * S
    else:
        target = now + period_length(s) * n
    return max(target, now)


# The run -----------------------------------------------------------------------------------------


class Run:
    """Plays a drawn run and checks the invariants as it goes."""

    def __init__(self, plan, start, trial_end, policy, outcomes, default) -> None:
        self.d = Driver.create(T0, plan=plan, start_date=start, trial_end=trial_end,
                               policy=policy, outcomes=outcomes, default=default)
        self.checked_steps = 0
        self.canceled_at_step: int | None = None
        self.validations = 0
        self.check()

    def wait(self, spec) -> None:
        self.d.advance(wait_target(spec, self.d.state, self.d.now))
        self.check()

    def request(self, spec) -> None:
        d = self.d
        now = d.now + timedelta(minutes=7)  # requests arrive between wake-ups, or on them
        if spec[0] == "cancel" and spec[2] is not None and spec[2][0] == "end":
            now = d.now  # keep "period end +- 1 s" meaningful
        prev = d.state
        request = build(spec, prev, now)

        # validate(prev, r, now) raises iff handle(advance(prev, now)) raises, when the advance
        # leaves no charge in flight.
        jumped = lifecycle.advance(prev, now)
        expected = None
        if jumped.state.awaiting_charge is None:
            self.validations += 1
            expected = outcome_of(lambda: lifecycle.handle(jumped.state, request, now))
            got = outcome_of(lambda: lifecycle.validate(prev, request, now))
            assert got == expected, (request, got, expected)

        d.advance(now)
        self.check()
        if expected is not None and not any(isinstance(c, Charge) for c in jumped.commands):
            # Waking at every wake-up or once at ``now`` reach the same state.
            assert d.state == jumped.state
        before, mark = d.state, d.mark
        try:
            d.request(request, now)
        except RequestRefused:  # RequestInvalid is a RequestRefused; anything else fails
            assert d.state == before, "a refused request changed the state"
            assert d.since(mark) == [], "a refused request issued commands"
            event(f"{spec[0]} refused ({before.status.value})")
        else:
            assert not before.ended, "an ended subscription accepted a request"
            event(f"{spec[0]} accepted ({before.status.value})")
        self.check()

    # Invariants ----------------------------------------------------------------------------

    def check(self) -> None:
        d = self.d
        s = d.state
        assert s.awaiting_charge is None and d.pending is None  # every charge got its outcome
        for index in range(self.checked_steps, len(d.steps)):
            step = d.steps[index]
            after, before = step.after, step.before
            assert after.current_period_start < after.current_period_end, step
            assert after.current_period_start >= after.start_date
            if self.canceled_at_step is not None:
                assert after.status == Status.CANCELED, "canceled is terminal"
                assert step.commands == (), "an ended subscription issued commands"
            elif after.status == Status.CANCELED:
                self.canceled_at_step = index
                assert after.ended_at is not None and after.canceled_at is not None
                assert not after.has_access(step.now)
                assert after.dunning is None
            for command in step.commands:
                if isinstance(command, Charge):
                    assert before is None or before.status not in (
                        Status.NON_RENEWING, Status.CANCELED), (before.status, command)
                    assert not after.in_extension
                    assert command.amount == s.plan.amount > 0
                    assert command.currency == s.plan.currency
                if isinstance(command, Refund):
                    assert before is not None
                    assert 0 < command.amount <= before.current_period_paid
        self.checked_steps = len(d.steps)

        keys = [c.idempotency_key for c in d.charges]
        assert len(keys) == len(set(keys)), "a charge idempotency key was reused"
        for charge in d.charges:
            m = KEY.match(charge.idempotency_key)
            assert m, charge.idempotency_key
            assert m["period"] == charge.period_key and int(m["attempt"]) == charge.attempt

        events = d.events
        seqs = [int(e.id.rsplit("_", 1)[1]) for e in events]
        assert all(e.id.startswith("evt_sub_1_") for e in events)
        assert seqs == list(range(1, len(events) + 1)), "event ids must strictly increase"
        assert s.event_seq == len(events)
        assert list(s.recent_events) == events[-25:]
        assert all(a.created <= b.created for a, b in zip(events, events[1:]))
        assert events[0].type == "customer.subscription.created"
        deleted = [e for e in events if e.type == "customer.subscription.deleted"]
        assert len(deleted) == (1 if s.ended else 0)


def outcome_of(call) -> str | None:
    try:
        call()
    except RequestRefused as refused:
        return f"{type(refused).__name__}:{refused.code}"
    return None


@given(runs())
@settings(max_examples=examples(250), deadline=None)
def test_random_runs_keep_the_invariants(run):
    plan, start, trial_end, policy, outcomes, default, actions = run
    r = Run(plan, start, trial_end, policy, outcomes, default)
    for kind, spec in actions:
        if kind == "wait":
            r.wait(spec)
        else:
            r.request(spec)
    # Whatever happened, a long wait settles the run with the invariants intact.
    for st_ in {x.after.status.value for x in r.d.steps} | (
            {"extension"} if any(x.after.in_extension for x in r.d.steps) else set()):
        event(f"reached {st_}")
    r.d.advance(r.d.now + timedelta(days=400))
    r.check()


@given(runs(), st.data())
@settings(max_examples=examples(60), deadline=None)
def test_handle_is_deterministic(run, data):
    """The same request on the same state at the same instant always gives the same answer."""
    plan, start, trial_end, policy, outcomes, default, actions = run
    r = Run(plan, start, trial_end, policy, outcomes, default)
    for kind, spec in actions:
        if kind == "wait":
            r.wait(spec)
            continue
        s, now = r.d.state, r.d.now
        request = build(spec, s, now)
        first = outcome_of(lambda: lifecycle.handle(s, request, now))
        second = outcome_of(lambda: lifecycle.handle(s, request, now))
        assert first == second
        if first is None:
            assert lifecycle.handle(s, request, now) == lifecycle.handle(s, request, now)
        r.request(spec)


# Three years of monthly renewals ----------------------------------------------------------------


@given(anchor=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                           timezones=st.just(UTC)))
@settings(max_examples=examples(12), deadline=None)
def test_three_years_of_monthly_renewals_make_36_charges_on_the_anchor_day(anchor):
    d = Driver.create(anchor)
    three_years = boundary(anchor, "month", 1, 36)
    d.advance(three_years - S)
    assert len(d.charges) == 36
    assert [c.period_key for c in d.charges] == [
        period_key(boundary(anchor, "month", 1, i)) for i in range(36)]
    assert all(c.attempt == 1 for c in d.charges)
    starts = [g.period_start for g in d.of(GrantCredits)]
    assert len(starts) == 36
    for i, start in enumerate(starts):
        assert start.day == min(anchor.day, calendar.monthrange(start.year, start.month)[1])
        assert start.time() == anchor.time()
        assert (start.year - anchor.year) * 12 + start.month - anchor.month == i
    assert d.state.status == Status.ACTIVE
    assert d.state.current_period_end == three_years
    d.advance(three_years)
    assert len(d.charges) == 37
