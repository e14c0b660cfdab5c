"""Drive the pure lifecycle core the way ``workflows/subscription.py`` does, without Temporal.

``Driver`` holds one subscription. It executes each Decision's commands in order, and for every
``Charge`` feeds ``apply_outcome`` with the next scripted outcome ("ok", "decline" or "hold" to
leave the charge in flight), exactly like the workflow's ``_execute``. Time only moves forward:
``advance(t)`` wakes at every ``next_wakeup`` up to ``t`` (the workflow sleeps until each one),
then catches up at ``t``; ``request(r, t)`` advances to ``t`` first, then calls ``handle``.

Every Decision is recorded as a ``Step`` (the state before it, the commands, the instant), so
scenarios can assert on "what happened" and property tests can check invariants over a run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain import lifecycle
from domain.commands import (
    CallFailed,
    Charge,
    CollectPendingCharges,
    Command,
    DiscardPendingCharges,
    Emit,
    ForfeitCredits,
    GrantCredits,
    LockPurchasedCredits,
    PaymentOutcome,
    Refund,
)
from domain.lifecycle import Decision, NewSubscription
from domain.model import Actor, BillingPolicy, Event, SubscriptionState
from domain.plans import Plan

__all__ = [
    "CUSTOMER", "DAILY", "DECLINE", "Driver", "FREE", "HOLD", "OK", "PRO", "Step", "WEEKLY",
    "YEARLY", "at", "kinds", "CollectPendingCharges", "DiscardPendingCharges", "ForfeitCredits",
    "GrantCredits", "LockPurchasedCredits", "Refund", "Charge", "Emit",
]


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
       microsecond: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


SECOND = timedelta(seconds=1)

PRO = Plan(id="pro", name="Pro", amount=3000, currency="usd", interval="month",
           included_credits=1000)
FREE = Plan(id="free", name="Free", amount=0, currency="usd", interval="month",
            included_credits=100)
YEARLY = Plan(id="pro-yearly", name="Pro yearly", amount=30000, currency="usd",
              interval="year", included_credits=12000)
WEEKLY = Plan(id="pro-weekly", name="Pro weekly", amount=700, currency="eur", interval="week",
              included_credits=70)
DAILY = Plan(id="pro-daily", name="Pro daily", amount=100, currency="usd", interval="day")

CUSTOMER = Actor(kind="customer", id="usr_owner")

OK, DECLINE, HOLD = "ok", "decline", "hold"


def kinds(commands: Iterable[Command]) -> list[str]:
    """Command kinds, with Emit shown as its event type: easy to compare in scenarios."""
    return [c.event.type if isinstance(c, Emit) else c.kind for c in commands]


@dataclass(frozen=True)
class Step:
    label: str  # create | advance | outcome | request
    now: datetime
    before: SubscriptionState | None
    decision: Decision

    @property
    def commands(self) -> tuple[Command, ...]:
        return self.decision.commands

    @property
    def after(self) -> SubscriptionState:
        return self.decision.state


@dataclass
class Driver:
    state: SubscriptionState
    now: datetime
    outcomes: deque[str] = field(default_factory=deque)
    default: str = OK
    decline_code: str = "card_declined"
    steps: list[Step] = field(default_factory=list)
    log: list[Command] = field(default_factory=list)
    pending: Charge | None = None  # a charge left in flight ("hold")
    _intents: int = 0

    # Construction ------------------------------------------------------------------------

    @classmethod
    def create(cls, now: datetime, *, plan: Plan = PRO, start_date: datetime | None = None,
               trial_end: datetime | None = None, policy: BillingPolicy | None = None,
               sub_id: str = "sub_1", customer_id: str = "cus_1",
               requested_by: Actor = CUSTOMER, outcomes: Iterable[str] = (),
               default: str = OK, rules: int = lifecycle.CURRENT_RULES) -> Driver:
        new = NewSubscription(id=sub_id, customer_id=customer_id, plan=plan,
                              policy=policy or BillingPolicy(), start_date=start_date,
                              trial_end=trial_end, requested_by=requested_by)
        decision = lifecycle.create(new, now, rules)
        driver = cls(state=decision.state, now=now, outcomes=deque(outcomes), default=default)
        driver._execute("create", None, decision, now)
        return driver

    def script(self, *outcomes: str) -> Driver:
        """Queue outcomes for the next Charges (then ``default``)."""
        self.outcomes.extend(outcomes)
        return self

    # Execution (mirrors SubscriptionWorkflow._apply / _execute) ----------------------------

    def _execute(self, label: str, before: SubscriptionState | None, decision: Decision,
                 now: datetime) -> Decision:
        self.state = decision.state
        self.steps.append(Step(label, now, before, decision))
        for command in decision.commands:
            self.log.append(command)
            if isinstance(command, Charge):
                script = self.outcomes.popleft() if self.outcomes else self.default
                if script == HOLD:
                    self.pending = command
                    continue
                self._outcome(command, script, now)
        return decision

    def _outcome(self, charge: Charge, script: str, now: datetime) -> None:
        if script == OK:
            self._intents += 1
            outcome = PaymentOutcome(idempotency_key=charge.idempotency_key, status="succeeded",
                                     amount=charge.amount,
                                     payment_intent_id=f"pi_{self.state.id}_{self._intents}")
        elif script == DECLINE:
            outcome = PaymentOutcome(idempotency_key=charge.idempotency_key, status="declined",
                                     amount=0, decline_code=self.decline_code,
                                     message="Your card was declined.")
        else:  # pragma: no cover - a typo in a scenario
            raise ValueError(f"unknown scripted outcome {script!r}")
        self.feed(outcome, now)

    def feed(self, outcome: PaymentOutcome, now: datetime | None = None) -> Decision:
        """Feed any PaymentOutcome (e.g. a stale one) to ``apply_outcome``."""
        now = self._tick(now)
        before = self.state
        return self._execute("outcome", before,
                             lifecycle.apply_outcome(before, outcome, now), now)

    def resolve(self, script: str = OK, now: datetime | None = None) -> None:
        """Settle the charge left in flight by a "hold"."""
        assert self.pending is not None, "no charge in flight"
        charge, self.pending = self.pending, None
        self._outcome(charge, script, self._tick(now))

    def fail(self, code: str = "stripe_authentication", now: datetime | None = None
             ) -> Decision:
        """The charge left in flight by a "hold" failed so that only an operator can fix it
        (what the workflow feeds ``lifecycle.hold`` after a non-retryable activity error)."""
        assert self.pending is not None, "no charge in flight"
        charge, self.pending = self.pending, None
        now = self._tick(now)
        failure = CallFailed(idempotency_key=charge.idempotency_key, activity="charge",
                             code=code, message="Invalid API Key provided",
                             stripe_request_id="req_1", charge=charge)
        return self._execute("hold", self.state, lifecycle.hold(self.state, failure, now), now)

    # Time -----------------------------------------------------------------------------------

    def _tick(self, now: datetime | None) -> datetime:
        now = self.now if now is None else now
        assert now >= self.now, f"time goes forward only ({now} < {self.now})"
        self.now = now
        return now

    def _catch_up(self, now: datetime) -> None:
        """SubscriptionWorkflow._catch_up: advance until nothing changes."""
        while self.pending is None:
            before = self.state
            decision = lifecycle.advance(before, now)
            if decision.state == before and not decision.commands:
                return
            self._execute("advance", before, decision, now)

    def advance(self, until: datetime) -> Driver:
        """Sleep until each wake-up up to ``until`` (as the workflow does), then catch up."""
        assert until >= self.now, f"time goes forward only ({until} < {self.now})"
        while self.pending is None:
            wake = lifecycle.next_wakeup(self.state)
            if wake is None or wake > until:
                break
            self.now = max(wake, self.now)
            self._catch_up(self.now)
        if self.pending is None:
            self._catch_up(until)
            self.now = until
        return self

    def jump(self, until: datetime) -> Driver:
        """Wake only at ``until`` (a worker that was down): one catch-up at that instant."""
        self._catch_up(self._tick(until))
        return self

    # Requests ---------------------------------------------------------------------------------

    def request(self, request, now: datetime | None = None) -> Decision:
        """Advance to ``now``, handle the request (raises RequestRefused, nothing changed),
        then catch up again as the workflow does after each request: a retry that succeeds
        for a period that already ended is followed at once by the renewals now due."""
        now = self.now if now is None else now
        self.advance(now)
        before = self.state
        decision = lifecycle.handle(before, request, now)
        self._execute("request", before, decision, now)
        self._catch_up(now)
        return decision

    def validate(self, request, now: datetime | None = None) -> None:
        lifecycle.validate(self.state, request, self.now if now is None else now)

    # Views ------------------------------------------------------------------------------------

    def since(self, mark: int) -> list[Command]:
        """Commands logged after ``mark = len(driver.log)``."""
        return self.log[mark:]

    @property
    def mark(self) -> int:
        return len(self.log)

    def of(self, kind: type, commands: Iterable[Command] | None = None) -> list:
        return [c for c in (self.log if commands is None else commands) if isinstance(c, kind)]

    @property
    def charges(self) -> list[Charge]:
        return self.of(Charge)

    @property
    def events(self) -> list[Event]:
        return [c.event for c in self.log if isinstance(c, Emit)]

    def events_of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]

    @property
    def states(self) -> list[SubscriptionState]:
        return [s.after for s in self.steps]


# Hypothesis budgets (per test, never a global profile: other suites share the process). -------
def examples(default: int) -> int:
    """``DOMAIN_HYPOTHESIS_EXAMPLES=N`` scales every property up for a longer local search."""
    import os

    scale = os.environ.get("DOMAIN_HYPOTHESIS_EXAMPLES")
    return int(scale) if scale else default
