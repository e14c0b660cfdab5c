"""The subscription state machine: (state, input, now) -> Decision(new state, commands).

Three kinds of input drive it:
- time: ``advance`` applies every transition due at ``now`` (start, trial end, renewal,
  a scheduled cancellation taking effect, a dunning retry), stopping at a Charge whose
  outcome it needs;
- money: ``apply_outcome`` takes the result of that Charge; ``hold`` takes a call that failed
  so that only an operator can fix it (the subscription waits, visibly, for a Retry);
- people: ``handle`` takes a request (cancel, reactivate, postpone, payment method update,
  pause, resume, plan change (an upgrade now, prorated, from rule version 4; anything else
  at period end), an operator's retry of a held subscription),
  refusing it with a reason when the rules do not allow it. ``validate`` answers "would
  handle accept this now?" without changing anything, for Temporal update validators.

Time-driven transitions due at ``now`` always happen before a request made at ``now``: a
reactivation at the instant a cancellation takes effect is one moment too late.

Running subscriptions replay their history, so a rule change that alters the commands for an
existing state is a new *rule version* (``RULES``): the state carries the version it runs
under, the rules branch on it explicitly, and the shell moves a subscription to a newer
version only at a safe point (``upgrade_rules``; docs/lifecycle.md "Rule versions").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain import proration
from domain.refunds import cancellation_refunds
from domain.commands import (
    Charge,
    CollectPendingCharges,
    Command,
    DiscardPendingCharges,
    CallFailed,
    Emit,
    ForfeitCredits,
    GrantCredits,
    LockPurchasedCredits,
    PaymentOutcome,
    UnlockPurchasedCredits,
)
from domain.declines import DeclineKind, classify
from domain.errors import PaymentDeclined, RequestInvalid, RequestRefused
from domain.model import (
    SYSTEM,
    Actor,
    BillingPolicy,
    Cancellation,
    Discount,
    Dunning,
    Event,
    Frozen,
    Hold,
    PaidUpgrade,
    Pausing,
    PlanUpgrade,
    Status,
    SubscriptionState,
)
from domain.periods import boundary, index_at, period_key, require_utc
from domain.plans import Plan
from domain.requests import (
    AcceptRetentionOffer,
    Cancel,
    ChangePlan,
    Pause,
    PaymentMethodUpdated,
    Postpone,
    Reactivate,
    Request,
    Resume,
    Retry,
)

# Rule versions: what each one changed. A new subscription starts on CURRENT_RULES.
RULES = {
    1: "the rules before versions existed: a late recovery from dunning charges every period "
       "that ended meanwhile, back to back",
    2: "a late recovery from dunning charges once, for the period containing now; the periods "
       "that ended without access are skipped (D9)",
    3: "decline-aware dunning: a hard decline (domain.declines) skips the remaining retries "
       "and waits for a new payment method; one needing authentication (3-D Secure) asks the "
       "customer to act instead of retrying; the final action applies when that wait ends (D9)",
    4: "mid-period upgrades: a same-term plan with a higher price takes effect at once and "
       "charges the prorated difference (domain.proration); a decline leaves the plan as it "
       "was; other changes still wait for the period end; a plan in another currency is "
       "refused; an immediate cancellation's refund covers that charge too (D6, D11, D15)",
}
CURRENT_RULES = max(RULES)

RECENT_EVENTS_KEPT = 25
SUBSCRIBE_UNLOCK = "subscribe-unlock"  # idempotency-key suffix of the D16 unlock on subscribe
ENDED_MESSAGE = "ended subscriptions cannot be reactivated; create a new subscription"


class Decision(Frozen):
    state: SubscriptionState
    commands: tuple[Command, ...] = ()

    def then(self, other: Decision) -> Decision:
        return Decision(state=other.state, commands=self.commands + other.commands)


class NewSubscription(Frozen):
    id: str
    customer_id: str
    organization_id: str | None = None
    plan: Plan
    policy: BillingPolicy = BillingPolicy()
    start_date: datetime | None = None  # None: now
    trial_end: datetime | None = None
    requested_by: Actor = Actor()


# Events ------------------------------------------------------------------------------------


def _emit(
    state: SubscriptionState,
    type_: str,
    now: datetime,
    request: Actor | None,
    previous: dict[str, Any] | None = None,
) -> Decision:
    seq = state.event_seq + 1
    event = Event(
        id=f"evt_{state.id}_{seq:06d}",
        type=type_,
        created=now,
        request=request,
        data=state.snapshot(),
        previous_attributes=previous or {},
    )
    recent = (state.recent_events + (event,))[-RECENT_EVENTS_KEPT:]
    new = state.model_copy(update={"event_seq": seq, "recent_events": recent})
    return Decision(state=new, commands=(Emit(event=event),))


# Snapshot keys derived from others (the renewal line from status and dates, the grace end from
# dunning, the hold): never a change of their own, so they neither fill previous_attributes nor
# make an event (an event only they would make would change the commands of recorded runs).
_DERIVED = ("renewal", "grace_until", "hold")


def _changed(before: SubscriptionState, after: SubscriptionState) -> dict[str, Any]:
    """Stripe's previous_attributes: the old values of the snapshot fields that changed."""
    old, new = before.snapshot(), after.snapshot()
    for key in _DERIVED:
        old.pop(key, None)
        new.pop(key, None)
    changed = {k: v for k, v in old.items() if new.get(k) != v}
    # Optional fields (pause_collection) that appear were null before.
    changed.update({k: None for k in new if k not in old})
    return changed


def _updated(before: SubscriptionState, after: SubscriptionState, now: datetime,
             request: Actor | None) -> Decision:
    previous = _changed(before, after)
    if not previous:
        return Decision(state=after)
    return _emit(after, "customer.subscription.updated", now, request, previous)


# Creation ------------------------------------------------------------------------------------


def create(new: NewSubscription, now: datetime, rules: int = CURRENT_RULES) -> Decision:
    """A new subscription on rule version ``rules`` (the shell passes the version its
    history allows; see ``RULES``)."""
    if rules not in RULES:
        raise ValueError(f"unknown rule version {rules}")
    now = require_utc(now, "now")
    start = require_utc(new.start_date, "start_date") if new.start_date else now
    start = max(start, now)
    trial_end = require_utc(new.trial_end, "trial_end") if new.trial_end else None
    if trial_end is not None and trial_end <= start:
        raise RequestInvalid("trial_end_not_after_start", "trial_end must be after the start",
                             field="trial_end")
    anchor = trial_end or start
    plan = new.plan
    state = SubscriptionState(
        id=new.id,
        customer_id=new.customer_id,
        organization_id=new.organization_id or new.customer_id,
        plan=plan,
        policy=new.policy,
        status=Status.SCHEDULED,
        created=now,
        start_date=start,
        billing_cycle_anchor=anchor,
        trial_end=trial_end,
        current_period_start=start,
        current_period_end=trial_end or boundary(anchor, plan.interval, plan.interval_count, 1),
        rules=rules,
    )
    if start > now:
        return _emit(state, "customer.subscription.created", now, new.requested_by)
    if trial_end is not None:
        trialing = state.model_copy(update={"status": Status.TRIALING})
        created = _emit(trialing, "customer.subscription.created", now, new.requested_by)
        return created.then(_unlock_on_subscribe(created.state, now))
    incomplete = state.model_copy(update={"status": Status.INCOMPLETE})
    created = _emit(incomplete, "customer.subscription.created", now, new.requested_by)
    return created.then(_open_period(created.state, index=0, at=start, purpose="first_period"))


def _begin(state: SubscriptionState, at: datetime) -> Decision:
    """The start date arrived: a trial, or the first paid period."""
    if state.trial_end is not None and state.trial_end > at:
        after = state.model_copy(update={
            "status": Status.TRIALING,
            "current_period_start": at,
            "current_period_end": state.trial_end,
        })
        began = _updated(state, after, at, None)
        return began.then(_unlock_on_subscribe(began.state, at))
    return _open_period(state, index=0, at=at, purpose="first_period")


def _unlock_on_subscribe(state: SubscriptionState, at: datetime) -> Decision:
    """D16: a new paid subscription (its first paid period, or a trial that gives access, as
    when resubscribing with the old anchor) unlocks purchased credits an earlier term locked.
    A no-op in the ledger when nothing is locked; never for the free plan."""
    if state.plan.is_free:
        return Decision(state=state)
    return Decision(state=state, commands=(UnlockPurchasedCredits(
        idempotency_key=f"{state.id}:{state.period_key}:{SUBSCRIBE_UNLOCK}",
        period_key=state.period_key, at=at),))


# Periods and charges -------------------------------------------------------------------------


def _charge_key(state: SubscriptionState, attempt: int) -> str:
    return f"{state.id}:{state.period_key}:{attempt}"


def _open_period(state: SubscriptionState, index: int, at: datetime, purpose: str) -> Decision:
    """Start period ``index`` and charge for it (or grant at once on a free plan)."""
    start = state.anchor_boundary(index)
    end = state.anchor_boundary(index + 1)
    update: dict[str, Any] = {
        "period_index": index,
        "current_period_start": start,
        "current_period_end": end,
        "current_period_paid": 0,
        "current_period_payment_intent": None,
        "current_period_upgrades": (),
        "in_extension": False,
        "status": Status.INCOMPLETE if purpose == "first_period" else state.status,
    }
    if state.discount is not None or state.current_period_price is not None:
        update.update(_discounted_period(state))
    opened = state.model_copy(update=update)
    if opened.price == 0:
        paid = PaymentOutcome(idempotency_key=_charge_key(opened, 1), status="succeeded",
                              amount=0)
        return _paid(opened, paid, at)
    key = _charge_key(opened, 1)
    charge = Charge(
        idempotency_key=key,
        period_key=opened.period_key,
        attempt=1,
        amount=opened.price,
        currency=state.plan.currency,
        purpose=purpose,  # type: ignore[arg-type]
    )
    return Decision(state=opened.model_copy(update={"awaiting_charge": key}), commands=(charge,))


def _discounted_period(state: SubscriptionState) -> dict[str, Any]:
    """D14: the period being opened uses one discounted period, if any are left."""
    d = state.discount
    if d is None:
        return {"current_period_price": None}
    left = d.periods_left - 1
    return {"current_period_price": d.offer.price(state.plan.amount),
            "discount": d.model_copy(update={"periods_left": left}) if left > 0 else None}


def _same_term(a: Plan, b: Plan) -> bool:
    return (a.interval, a.interval_count) == (b.interval, b.interval_count)


def _switch_plan(state: SubscriptionState, at: datetime) -> Decision:
    """A pending plan change takes effect at the boundary ``at``. A different term starts a
    new billing cycle there (the old anchor has no meaning for the new interval)."""
    new = state.pending_plan
    if new is None:
        return Decision(state=state)
    update: dict[str, Any] = {"plan": new, "pending_plan": None}
    if not _same_term(new, state.plan):
        update["billing_cycle_anchor"] = at
    return _updated(state, state.model_copy(update=update), at, None)


def _renew(state: SubscriptionState, upto: datetime | None = None) -> Decision:
    """The paid period ended with no cancellation due: forfeit its credits, open the next
    (on the pending plan, if one is set). ``upto`` opens the period containing that instant
    instead, skipping the ones in between uncharged (a late recovery from dunning)."""
    at = state.current_period_end
    forfeit = ForfeitCredits(idempotency_key=f"{state.id}:{state.period_key}:forfeit",
                             period_key=state.period_key, at=at)
    switched = _switch_plan(state, at)
    s = switched.state
    index = index_at(s.billing_cycle_anchor, s.plan.interval, s.plan.interval_count,
                     max(at, upto) if upto is not None else at)
    opened = _open_period(s, index=index, at=upto or at, purpose="renewal")
    return Decision(state=opened.state,
                    commands=(forfeit,) + switched.commands + opened.commands)


def _roll_into_extension(state: SubscriptionState) -> Decision:
    """D5: a postponed cancellation outlives the paid term; the extra time is not charged."""
    at = state.current_period_end
    forfeit = ForfeitCredits(idempotency_key=f"{state.id}:{state.period_key}:forfeit",
                             period_key=state.period_key, at=at)
    after = state.model_copy(update={
        "current_period_start": at,
        "current_period_end": state.cancel_at,
        "period_index": index_at(state.billing_cycle_anchor, state.plan.interval,
                                 state.plan.interval_count, at),
        "current_period_paid": 0,
        "current_period_payment_intent": None,
        "current_period_upgrades": (),
        "in_extension": True,
    })
    return Decision(state=after, commands=(forfeit,)).then(_updated(state, after, at, None))


def _paid(state: SubscriptionState, outcome: PaymentOutcome, now: datetime) -> Decision:
    status = Status.ACTIVE
    if state.cancel_at is not None and state.cancel_at <= state.current_period_end:
        status = Status.NON_RENEWING
    after = state.model_copy(update={
        "status": status,
        "dunning": None,
        "awaiting_charge": None,
        "current_period_paid": outcome.amount,
        "current_period_payment_intent": outcome.payment_intent_id,
    })
    commands: tuple[Command, ...] = ()
    if state.plan.included_credits > 0:
        commands = (GrantCredits(
            idempotency_key=f"{state.id}:{state.period_key}:grant",
            period_key=state.period_key,
            amount=state.plan.included_credits,
            period_start=state.current_period_start,
            period_end=state.current_period_end,
        ),)
    if state.status == Status.INCOMPLETE:
        commands += _unlock_on_subscribe(state, now).commands
    decision = Decision(state=after, commands=commands)
    if outcome.amount > 0:
        decision = decision.then(_emit(decision.state, "invoice.paid", now, None,
                                       {"amount_paid": outcome.amount}))
    decision = decision.then(_updated(state, decision.state, now, None))
    if (skips_missed_periods(state) and state.dunning is not None
            and now > after.current_period_end and after.cancel_at is None
            and after.pause is None):
        # A late recovery: the periods that ended while the customer had no access are not
        # charged; the subscription continues on its anchor with the period containing now.
        decision = decision.then(_renew(decision.state, upto=now))
    return decision


def skips_missed_periods(state: SubscriptionState) -> bool:
    """Rule version 2: a late recovery skips the periods that ended without access."""
    return state.rules >= 2


def decline_aware(state: SubscriptionState) -> bool:
    """Rule version 3: what a decline does depends on its kind (domain.declines)."""
    return state.rules >= 3


def rules_upgradable(state: SubscriptionState, to: int = CURRENT_RULES) -> bool:
    """A safe point to move to rule version ``to``: an older version, and nothing in progress
    that the versions decide differently (versions 2 and 3 change dunning only, version 4 what
    a new plan-change request does: no dunning, no charge in flight, no hold). The shell asks
    at continue-as-new, which follows a paid renewal, with the newest version its history
    allows."""
    return (state.rules < to and state.dunning is None
            and state.awaiting_charge is None and state.hold is None)


def upgrade_rules(state: SubscriptionState, to: int = CURRENT_RULES) -> SubscriptionState:
    """The state on rule version ``to`` (call only where ``rules_upgradable``)."""
    assert to in RULES and rules_upgradable(state, to), "not a safe point to change versions"
    return state.model_copy(update={"rules": to})


def _declined(state: SubscriptionState, outcome: PaymentOutcome, now: datetime) -> Decision:
    policy = state.policy
    previous = state.dunning if state.dunning and state.dunning.period_key == state.period_key \
        else None
    attempts = (previous.attempts if previous else 0) + 1
    first_period = state.status == Status.INCOMPLETE
    kind = classify(outcome.decline_code) if decline_aware(state) else DeclineKind.SOFT
    if kind != DeclineKind.SOFT and attempts < policy.max_attempts:
        return _wait_for_customer(state, outcome, now, kind, attempts, previous)
    failed = _emit(state.model_copy(update={"awaiting_charge": None}), "invoice.payment_failed",
                   now, None, {"attempt": attempts, "decline_code": outcome.decline_code})
    state_f = failed.state
    if attempts >= policy.max_attempts:
        if policy.final_action == "unpaid" and not first_period:
            after = state_f.model_copy(update={
                "status": Status.UNPAID,
                "dunning": Dunning(period_key=state.period_key, attempts=attempts,
                                   next_retry_at=None,
                                   grace_until=previous.grace_until if previous else now,
                                   last_decline_code=outcome.decline_code),
            })
            return failed.then(_updated(state_f, after, now, None))
        cancellation = Cancellation(mode="immediately", reason="payment_failed",
                                    requested_by=SYSTEM)
        return failed.then(_end(state_f, now, cancellation, request=None, scheduled=False))
    grace_until = previous.grace_until if previous else (
        now if first_period else state.current_period_start + policy.grace_period)
    after = state_f.model_copy(update={
        "status": Status.INCOMPLETE if first_period else Status.PAST_DUE,
        "dunning": Dunning(period_key=state.period_key, attempts=attempts,
                           next_retry_at=now + policy.retry_delays[attempts - 1],
                           grace_until=grace_until, last_decline_code=outcome.decline_code),
    })
    return failed.then(_updated(state_f, after, now, None))


def _wait_for_customer(state: SubscriptionState, outcome: PaymentOutcome, now: datetime,
                       kind: DeclineKind, attempts: int, previous: Dunning | None) -> Decision:
    """Rule version 3: a hard decline, or one needing authentication, is never retried on the
    schedule: the same card would fail the same way (and card networks fine merchants that
    retry hard declines). The subscription waits for a new payment method, which retries at
    once (D9), until the grace period ends, or, if that comes first, the time the schedule
    would have retried: the customer never has less time than a soft decline gives. Then the
    final action applies. A hard decline emits ``invoice.payment_failed``, one needing
    authentication ``invoice.payment_action_required`` (Stripe's names); both carry
    ``payment_required`` in the snapshot, which the emails are written from."""
    policy = state.policy
    first_period = state.status == Status.INCOMPLETE
    grace_until = previous.grace_until if previous else (
        now if first_period else state.current_period_start + policy.grace_period)
    requires = "payment_method" if kind == DeclineKind.HARD else "authentication"
    after = state.model_copy(update={
        "awaiting_charge": None,
        "status": Status.INCOMPLETE if first_period else Status.PAST_DUE,
        "dunning": Dunning(period_key=state.period_key, attempts=attempts, next_retry_at=None,
                           grace_until=grace_until, last_decline_code=outcome.decline_code,
                           requires=requires,
                           ends_at=max(grace_until, now + policy.retry_delays[attempts - 1])),
    })
    event = ("invoice.payment_failed" if kind == DeclineKind.HARD
             else "invoice.payment_action_required")
    failed = _emit(after, event, now, None, {"attempt": attempts,
                                             "decline_code": outcome.decline_code})
    return failed.then(_updated(state, failed.state, now, None))


def _wait_ends(state: SubscriptionState, at: datetime) -> Decision:
    """Rule version 3: no new payment method came while the subscription waited for one; the
    final action applies as after the last retry (a first payment always cancels)."""
    assert state.dunning is not None
    if state.policy.final_action == "unpaid" and state.status != Status.INCOMPLETE:
        after = state.model_copy(update={
            "status": Status.UNPAID,
            "dunning": state.dunning.model_copy(update={"ends_at": None})})
        return _updated(state, after, at, None)
    cancellation = Cancellation(mode="immediately", reason="payment_failed", requested_by=SYSTEM)
    return _end(state, at, cancellation, request=None, scheduled=False)


def _retry(state: SubscriptionState, at: datetime) -> Decision:
    assert state.dunning is not None
    attempt = state.dunning.attempts + 1
    key = _charge_key(state, attempt)
    charge = Charge(
        idempotency_key=key,
        period_key=state.period_key,
        attempt=attempt,
        amount=state.price,
        currency=state.plan.currency,
        purpose="first_period" if state.status == Status.INCOMPLETE else "renewal",
    )
    after = state.model_copy(update={
        "awaiting_charge": key,
        "dunning": state.dunning.model_copy(update={"next_retry_at": None}),
    })
    return Decision(state=after, commands=(charge,))


def apply_outcome(state: SubscriptionState, outcome: PaymentOutcome, now: datetime) -> Decision:
    """Feed back the result of the Charge in flight. A stale or unknown outcome is ignored."""
    now = require_utc(now, "now")
    if state.awaiting_charge != outcome.idempotency_key:
        return Decision(state=state)
    if state.upgrade is not None and state.upgrade.idempotency_key == outcome.idempotency_key:
        if outcome.status == "succeeded":
            return _upgraded(state, outcome, now)
        return _upgrade_declined(state)
    if outcome.status == "succeeded":
        return _paid(state, outcome, now)
    return _declined(state, outcome, now)


# Held: waiting for an operator ------------------------------------------------------------------


def hold(state: SubscriptionState, failure: CallFailed, now: datetime) -> Decision:
    """A call failed so that retrying alone cannot fix it. Nothing about the customer changes
    (status, access, dates): the subscription waits, visibly, for an operator's Retry. For the
    charge in flight the core takes the charge back (cancel, reactivate and postpone are
    handled meanwhile, and Retry issues it again); for any other call the shell waits where
    it stopped."""
    now = require_utc(now, "now")
    held = Hold(code=failure.code, message=failure.message, activity=failure.activity,
                since=now, idempotency_key=failure.idempotency_key,
                stripe_request_id=failure.stripe_request_id)
    update: dict[str, Any] = {"hold": held}
    if failure.charge is not None and state.awaiting_charge == failure.idempotency_key:
        update["hold"] = held.model_copy(update={"charge_attempt": failure.charge.attempt,
                                                 "charge_purpose": failure.charge.purpose})
        update["awaiting_charge"] = None
    return Decision(state=state.model_copy(update=update))


def release(state: SubscriptionState) -> Decision:
    """The shell retried the held call (not a charge) on an operator's Retry."""
    return Decision(state=state.model_copy(update={"hold": None}))


def _retry_held(state: SubscriptionState, req: Retry, now: datetime) -> Decision:
    _refuse_if_ended(state, "retried")
    held = state.hold
    if held is None:
        raise RequestRefused("not_held", "the subscription is not held: there is nothing to "
                             "retry")
    if held.charge_attempt is None or held.charge_purpose is None:
        raise RuntimeError("a hold in the middle of a call is retried by the workflow itself")
    amount, currency = state.price, state.plan.currency
    if held.charge_purpose == "proration" and state.upgrade is not None:
        amount, currency = state.upgrade.amount, state.upgrade.plan.currency
    charge = Charge(idempotency_key=held.idempotency_key, period_key=state.period_key,
                    attempt=held.charge_attempt, amount=amount, currency=currency,
                    purpose=held.charge_purpose)
    after = state.model_copy(update={"hold": None, "awaiting_charge": held.idempotency_key})
    return Decision(state=after, commands=(charge,))


# What a held subscription still accepts: ending or keeping it is the customer's right even
# while we cannot charge; changes that would open or move periods wait for the retry.
_WHILE_HELD = (Cancel, Reactivate, Postpone, PaymentMethodUpdated, Retry)


def _refuse_if_held(state: SubscriptionState, request: Request) -> None:
    if state.hold is not None and not isinstance(request, _WHILE_HELD):
        raise RequestRefused("subscription_held", f"the subscription is waiting for an "
                             f"operator ({state.hold.code}); {request.kind} is possible once "
                             "it is retried")


# Ending ----------------------------------------------------------------------------------------


def _end(state: SubscriptionState, at: datetime, cancellation: Cancellation,
         request: Actor | None, scheduled: bool) -> Decision:
    """The subscription ends now. Scheduled ends collect pending charges (D7); immediate ones
    discard metered usage and close open charges (D6). Either way credits of the period are
    forfeited (D15) and purchased credits lock (D16)."""
    commands: list[Command] = []
    pk = state.period_key
    never_started = state.status == Status.SCHEDULED
    if not never_started:
        if scheduled:
            commands.append(CollectPendingCharges(idempotency_key=f"{state.id}:{pk}:final",
                                                  period_key=pk, currency=state.plan.currency))
        else:
            commands.append(DiscardPendingCharges(idempotency_key=f"{state.id}:{pk}:discard",
                                                  period_key=pk, currency=state.plan.currency))
        commands.extend(cancellation_refunds(state, at, cancellation.refund))
        commands.append(ForfeitCredits(idempotency_key=f"{state.id}:{pk}:forfeit",
                                       period_key=pk, at=at))
        commands.append(LockPurchasedCredits(idempotency_key=f"{state.id}:lock",
                                             period_key=pk, at=at))
    ended = state.model_copy(update={
        "status": Status.CANCELED,
        "ended_at": at,
        "canceled_at": state.canceled_at or at,
        "cancellation": state.cancellation if scheduled and state.cancellation else cancellation,
        "dunning": None,
        "awaiting_charge": None,
        "hold": None,  # nothing is retried for an ended subscription
        "pause": None,
        "pending_plan": None,  # an ended subscription has no next renewal
        "upgrade": None,
    })
    emitted = _emit(ended, "customer.subscription.deleted", at, request,
                    _changed(state, ended))
    return Decision(state=emitted.state, commands=tuple(commands) + emitted.commands)


# Time ------------------------------------------------------------------------------------------


def next_wakeup(state: SubscriptionState) -> datetime | None:
    """When ``advance`` next has something to do; None while nothing is scheduled (and
    while held: time stands still until the operator's Retry)."""
    if state.awaiting_charge is not None or state.ended or state.hold is not None:
        return None
    if state.status == Status.SCHEDULED:
        return state.start_date
    moments = [state.cancel_at] if state.cancel_at is not None else []
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE):
        if state.dunning and state.dunning.next_retry_at:
            moments.append(state.dunning.next_retry_at)
        elif state.dunning and state.dunning.ends_at:  # rule version 3: waiting for the customer
            moments.append(state.dunning.ends_at)
    elif state.status in (Status.ACTIVE, Status.NON_RENEWING, Status.TRIALING):
        moments.append(state.current_period_end)
    elif state.status == Status.PAUSED and state.pause is not None:
        if state.pause.resume_at is not None:
            moments.append(state.pause.resume_at)
        if not state.pause.paid_credits_forfeited:
            moments.append(state.current_period_end)
    return min(moments) if moments else None


def _step(state: SubscriptionState, now: datetime) -> Decision | None:
    """The one transition due at ``now``, or None."""
    due = next_wakeup(state)
    if due is None or due > now:
        return None
    if state.status == Status.SCHEDULED:
        return _begin(state, due)
    if state.cancel_at is not None and state.cancel_at <= due:
        assert state.cancellation is not None
        return _end(state, state.cancel_at, state.cancellation, request=None, scheduled=True)
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE):
        assert state.dunning is not None
        if state.dunning.next_retry_at is None:  # rule version 3: the wait for the customer
            return _wait_ends(state, due)
        return _retry(state, due)
    if state.status == Status.TRIALING:
        switched = _switch_plan(state, due)  # anchored at trial_end: a new term starts there
        return switched.then(_open_period(switched.state, index=0, at=due,
                                          purpose="first_period"))
    if state.status == Status.NON_RENEWING:
        return _roll_into_extension(state)
    if state.status == Status.PAUSED:
        assert state.pause is not None
        if not state.pause.paid_credits_forfeited and state.current_period_end <= due:
            return _forfeit_paused_period(state)
        return _resume(state, due, "keep", request=None)
    if state.pause is not None:  # active, with a pause scheduled at this period end
        return _pause_takes_effect(state, due, request=None)
    return _renew(state)


def advance(state: SubscriptionState, now: datetime) -> Decision:
    """Apply every transition due at ``now``; stop early when a Charge needs its outcome."""
    now = require_utc(now, "now")
    decision = Decision(state=state)
    while decision.state.awaiting_charge is None:
        step = _step(decision.state, now)
        if step is None:
            break
        decision = decision.then(step)
    return decision


# Requests --------------------------------------------------------------------------------------


def _in_trial(state: SubscriptionState) -> bool:
    """Still inside the trial (``trialing``, or ``non_renewing`` after a postponed trial
    cancellation): the current period is the uncharged trial ending at ``trial_end``."""
    return (state.trial_end is not None and not state.in_extension
            and state.status in (Status.TRIALING, Status.NON_RENEWING)
            and state.current_period_end == state.trial_end)


def ended_refusal(request: Request) -> RequestRefused:
    """The answer to a request that reaches a subscription after it ended (D4): queued behind
    the end inside the workflow, or sent once the workflow has completed."""
    message = (ENDED_MESSAGE if isinstance(request, Reactivate)
               else "the subscription has already ended")
    return RequestRefused("subscription_ended", message)


def _refuse_if_ended(state: SubscriptionState, action: str) -> None:
    if state.ended:
        if action == "reactivate":
            raise RequestRefused("subscription_ended", ENDED_MESSAGE)
        raise RequestRefused("subscription_ended",
                             f"the subscription has already ended; it cannot be {action}")


def _cancel(state: SubscriptionState, req: Cancel, now: datetime) -> Decision:
    _refuse_if_ended(state, "cancelled again")
    if req.mode != "at_date" and req.cancel_at is not None:
        raise RequestInvalid("cancel_at_not_allowed",
                             "cancel_at is only allowed with mode at_date", field="cancel_at")
    cancellation = Cancellation(mode=req.mode, feedback=req.feedback, comment=req.comment,
                                requested_by=req.requested_by, refund=req.refund)
    if req.mode == "immediately":
        return _end(state, now, cancellation, request=req.requested_by, scheduled=False)
    if state.status == Status.SCHEDULED:
        raise RequestRefused("not_started",
                             "a subscription that has not started can only be cancelled "
                             "immediately (D10)", field="mode")
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE, Status.UNPAID):
        raise RequestRefused("unpaid_period",
                             f"a {state.status.value} subscription has an unpaid period and "
                             "can only be cancelled immediately", field="mode")
    if state.status == Status.PAUSED:
        raise RequestRefused("paused", "a paused subscription can only be cancelled immediately",
                             field="mode")
    if state.pause is not None:
        raise RequestRefused("pause_scheduled", "a pause is scheduled for "
                             f"{state.pause.paused_at.isoformat()}; resume removes it before a "
                             "cancellation can be scheduled (or cancel immediately)",
                             field="mode")
    if req.mode == "at_period_end":
        cancel_at = state.current_period_end
    else:
        if req.cancel_at is None:
            raise RequestInvalid("cancel_at_required", "cancel_at is required when mode is "
                                 "at_date", field="cancel_at")
        if req.cancel_at <= now:
            raise RequestInvalid("cancel_at_not_in_future", "cancel_at must be in the future; "
                                 "use mode immediately to cancel now", field="cancel_at")
        cancel_at = req.cancel_at
    within = cancel_at <= state.current_period_end
    if _in_trial(state):
        status = Status.TRIALING
    else:
        status = Status.NON_RENEWING if within else Status.ACTIVE
    if state.in_extension and not within:
        raise RequestRefused("in_extension", "the subscription is in a postponed, unpaid "
                             "extension; use postpone to move its end", field="cancel_at")
    after = state.model_copy(update={
        "status": status,
        "cancel_at": cancel_at,
        "cancel_at_period_end": cancel_at == state.current_period_end and not state.in_extension,
        "canceled_at": now,
        "cancellation": cancellation,
    })
    return _updated(state, after, now, req.requested_by)


def _reactivate(state: SubscriptionState, req: Reactivate, now: datetime) -> Decision:
    _refuse_if_ended(state, "reactivate")
    if state.status == Status.PAUSED:
        raise RequestRefused("paused", "the subscription is paused, not cancelled: there is "
                             "no cancellation to undo; use resume to restart it")
    if state.cancel_at is None:
        raise RequestRefused("nothing_to_reactivate",
                             f"the subscription is {state.status.value} with no scheduled "
                             "cancellation; there is nothing to reactivate")
    update: dict[str, Any] = {
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation": None,
        # Reactivating only removes the cancellation: past_due stays past_due (dunning).
        "status": Status.TRIALING if _in_trial(state) else (
            Status.ACTIVE if state.status == Status.NON_RENEWING else state.status),
    }
    if state.in_extension:
        # D3+D5: renew at the next anchor date; the postponed time stays a free extension.
        index = index_at(state.billing_cycle_anchor, state.plan.interval,
                         state.plan.interval_count, now)
        update["current_period_end"] = state.anchor_boundary(index + 1)
        update["in_extension"] = False
    return _updated(state, state.model_copy(update=update), now, req.requested_by)


def _postpone(state: SubscriptionState, req: Postpone, now: datetime) -> Decision:
    _refuse_if_ended(state, "postponed")
    if state.cancel_at is None:
        raise RequestRefused("nothing_to_postpone",
                             "there is no scheduled cancellation to postpone; use cancel")
    if req.cancel_at <= now:
        raise RequestInvalid("cancel_at_not_in_future", "cancel_at must be in the future",
                             field="cancel_at")
    paid_through = state.current_period_start if state.in_extension else \
        state.current_period_end
    if state.in_extension and req.cancel_at <= paid_through:
        raise RequestInvalid("cancel_at_before_extension",
                             "cancel_at must be after the paid-through date "
                             f"{paid_through.isoformat()}", field="cancel_at")
    update: dict[str, Any] = {"cancel_at": req.cancel_at}
    within = req.cancel_at <= state.current_period_end
    if _in_trial(state):
        # D5: a trial that was ending (cancel_at inside it) and is postponed past trial_end is
        # extended uncharged, never converted; an at-date cancel beyond it still converts.
        ending = state.status == Status.NON_RENEWING or state.cancel_at <= \
            state.current_period_end
        update["status"] = Status.NON_RENEWING if ending and not within else Status.TRIALING
    elif state.status == Status.ACTIVE and within:
        update["status"] = Status.NON_RENEWING
    update["cancel_at_period_end"] = (req.cancel_at == state.current_period_end
                                      and not state.in_extension)
    if state.in_extension:
        update["current_period_end"] = req.cancel_at
    return _updated(state, state.model_copy(update=update), now, req.requested_by)


def _payment_method_updated(state: SubscriptionState, req: PaymentMethodUpdated,
                            now: datetime) -> Decision:
    _refuse_if_ended(state, "updated")
    if state.hold is not None:  # the held charge goes first, on the operator's Retry
        return Decision(state=state)
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE, Status.UNPAID) and state.dunning:
        return _retry(state, now)
    return Decision(state=state)


# Pause and resume (D12) -------------------------------------------------------------------------


def _pause(state: SubscriptionState, req: Pause, now: datetime) -> Decision:
    """Only an active subscription with nothing else scheduled can pause: a trial, an unpaid
    period or a scheduled cancellation each already decides what happens next."""
    _refuse_if_ended(state, "paused")
    if req.mode == "now" and req.resume_at is not None and req.resume_at <= now:
        raise RequestInvalid("resume_at_not_in_future", "resume_at must be in the future",
                             field="resume_at")
    if state.status == Status.PAUSED:
        raise RequestRefused("already_paused",
                             "the subscription is already paused; use resume to restart it")
    if state.pause is not None:
        raise RequestRefused("pause_scheduled", "a pause is already scheduled for "
                             f"{state.pause.paused_at.isoformat()}; resume removes it",
                             field="mode")
    if state.status == Status.SCHEDULED:
        raise RequestRefused("not_started", "a subscription that has not started cannot be "
                             "paused; cancel it immediately instead")
    if state.status == Status.TRIALING:
        raise RequestRefused("trialing", "a trial cannot be paused; cancel it or let it "
                             "convert at trial_end")
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE, Status.UNPAID):
        raise RequestRefused("unpaid_period", f"a {state.status.value} subscription has an "
                             "unpaid period; update the payment method or cancel immediately")
    if state.cancel_at is not None:
        raise RequestRefused("cancellation_scheduled", "a cancellation is scheduled for "
                             f"{state.cancel_at.isoformat()}; reactivate first to pause instead")
    if state.pending_plan is not None:
        raise RequestRefused("plan_change_scheduled", "a change to plan "
                             f"{state.pending_plan.id} is scheduled for the next renewal; change "
                             f"back to {state.plan.id} first to pause instead")
    paused_at = now if req.mode == "now" else state.current_period_end
    if req.resume_at is not None and req.resume_at <= paused_at:
        raise RequestInvalid("resume_at_not_after_pause", "resume_at must be after the pause "
                             f"takes effect at {paused_at.isoformat()}", field="resume_at")
    pausing = Pausing(seq=state.pauses + 1, mode=req.mode, requested_by=req.requested_by,
                      requested_at=now, paused_at=paused_at, resume_at=req.resume_at)
    scheduled = state.model_copy(update={"pause": pausing, "pauses": pausing.seq})
    if req.mode == "now":
        return _pause_takes_effect(scheduled, now, req.requested_by)
    return _updated(state, scheduled, now, req.requested_by)


def _pause_takes_effect(state: SubscriptionState, at: datetime,
                        request: Actor | None) -> Decision:
    """No renewals, no access. Purchased credits lock (D16); at a period end the ended
    period's subscription credits are forfeited (D15); a pause ``now`` keeps them until the
    paid period's own end."""
    pausing = state.pause
    assert pausing is not None
    pk = state.period_key
    at_boundary = at >= state.current_period_end
    commands: list[Command] = []
    if at_boundary:
        commands.append(ForfeitCredits(idempotency_key=f"{state.id}:{pk}:forfeit",
                                       period_key=pk, at=at))
    commands.append(LockPurchasedCredits(idempotency_key=f"{state.id}:pause{pausing.seq}:lock",
                                         period_key=pk, at=at))
    after = state.model_copy(update={
        "status": Status.PAUSED,
        "pause": pausing.model_copy(update={"paid_credits_forfeited": at_boundary}),
    })
    emitted = _emit(after, "customer.subscription.paused", at, request, _changed(state, after))
    return Decision(state=emitted.state, commands=tuple(commands) + emitted.commands)


def _forfeit_paused_period(state: SubscriptionState) -> Decision:
    """D15 while paused: the paid period ends, its subscription credits with it."""
    assert state.pause is not None
    pk, at = state.period_key, state.current_period_end
    after = state.model_copy(update={
        "pause": state.pause.model_copy(update={"paid_credits_forfeited": True})})
    return Decision(state=after, commands=(ForfeitCredits(
        idempotency_key=f"{state.id}:{pk}:forfeit", period_key=pk, at=at),))


def _resume(state: SubscriptionState, at: datetime, anchor: str,
            request: Actor | None) -> Decision:
    """Back to active at ``at``. ``keep``: inside the still-paid period nothing is charged;
    after it, the anchor period containing ``at`` opens and is charged now (full price, a
    normal renewal). ``reset``: the anchor moves to ``at`` and a new period is charged now."""
    pausing = state.pause
    assert pausing is not None
    pk = state.period_key
    if anchor == "reset" and period_key(at) == pk:
        anchor = "keep"  # the paid period began this very second: it is the new period
    opens = anchor == "reset" or at >= state.current_period_end
    commands: list[Command] = []
    if opens and not pausing.paid_credits_forfeited:
        commands.append(ForfeitCredits(idempotency_key=f"{state.id}:{pk}:forfeit",
                                       period_key=pk, at=at))
    commands.append(UnlockPurchasedCredits(
        idempotency_key=f"{state.id}:pause{pausing.seq}:unlock", period_key=pk, at=at))
    update: dict[str, Any] = {"status": Status.ACTIVE, "pause": None}
    if anchor == "reset":
        update["billing_cycle_anchor"] = at
    after = state.model_copy(update=update)
    emitted = _emit(after, "customer.subscription.resumed", at, request, _changed(state, after))
    decision = Decision(state=emitted.state, commands=tuple(commands) + emitted.commands)
    if not opens:
        return decision
    index = 0 if anchor == "reset" else index_at(
        after.billing_cycle_anchor, after.plan.interval, after.plan.interval_count, at)
    return decision.then(_open_period(decision.state, index=index, at=at, purpose="renewal"))


def _resume_request(state: SubscriptionState, req: Resume, now: datetime) -> Decision:
    _refuse_if_ended(state, "resumed")
    if state.status == Status.PAUSED:
        return _resume(state, now, req.anchor, req.requested_by)
    if state.pause is not None:
        if req.anchor == "reset":
            raise RequestRefused("pause_not_in_effect", "the pause has not taken effect; "
                                 "resume with anchor keep removes it (reset only applies to a "
                                 "paused subscription)", field="anchor")
        return _updated(state, state.model_copy(update={"pause": None}), now,
                        req.requested_by)
    raise RequestRefused("not_paused", f"the subscription is {state.status.value}, not "
                         "paused; there is nothing to resume")


# Plan change at period end (D11) ------------------------------------------------------------------


def _change_plan(state: SubscriptionState, req: ChangePlan, now: datetime) -> Decision:
    """Schedule ``req.plan`` for the next renewal: nothing is charged or refunded now; the
    renewal charges the new price and grants its credits. Asking for the current plan (by
    id) removes a pending change. A ``non_renewing`` subscription switched to a plan with a
    different term renews again (D11); a same-term change does not restore renewal, so it
    is refused until the cancellation is removed (reactivate first)."""
    _refuse_if_ended(state, "changed to another plan")
    new = req.plan
    if prorates_upgrades(state) and new.currency != state.plan.currency:
        raise RequestInvalid("currency_mismatch", f"plan {new.id} is priced in "
                             f"{new.currency.upper()} and the subscription in "
                             f"{state.plan.currency.upper()}; a plan change keeps the currency "
                             "(cancel and subscribe again to change it)", field="plan")
    if state.status == Status.SCHEDULED:
        # Nothing has been charged: it simply starts on the new plan.
        if new.id == state.plan.id:
            raise RequestRefused("same_plan", f"the subscription is already on plan {new.id}",
                                 field="plan")
        after = state.model_copy(update={
            "plan": new,
            "current_period_end": state.trial_end or boundary(
                state.billing_cycle_anchor, new.interval, new.interval_count, 1),
        })
        return _updated(state, after, now, req.requested_by)
    if state.status == Status.PAUSED:
        raise RequestRefused("paused", "the subscription is paused; resume it before changing "
                             "its plan")
    if state.pause is not None:
        raise RequestRefused("pause_scheduled", "a pause is scheduled for "
                             f"{state.pause.paused_at.isoformat()}; resume removes it before "
                             "the plan can change")
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE, Status.UNPAID):
        raise RequestRefused("unpaid_period", f"a {state.status.value} subscription has an "
                             "unpaid period; update the payment method before changing the plan")
    if state.in_extension:
        raise RequestRefused("in_extension", "the subscription is in a postponed, unpaid "
                             "extension; reactivate it before changing the plan")
    if state.pending_plan is not None and new == state.pending_plan:
        return Decision(state=state)  # already scheduled: a retried request changes nothing
    if upgrades_now(state, new):
        return _upgrade_now(state, req, now)
    current = new.id == state.plan.id
    update: dict[str, Any] = {"pending_plan": None if current else new}
    if state.cancel_at is not None:
        if _same_term(new, state.plan):
            raise RequestRefused("cancellation_scheduled", "a cancellation is scheduled for "
                                 f"{state.cancel_at.isoformat()} and plan {new.id} has the same "
                                 "term; reactivate first, then change the plan (only a plan "
                                 "with a different term restores renewal, D11)", field="plan")
        update.update({
            "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
            "cancellation": None,
            "status": Status.TRIALING if _in_trial(state) else Status.ACTIVE,
        })
    elif current and state.pending_plan is None:
        raise RequestRefused("same_plan", f"the subscription is already on plan {new.id} and "
                             "no change is scheduled", field="plan")
    return _updated(state, state.model_copy(update=update), now, req.requested_by)


def prorates_upgrades(state: SubscriptionState) -> bool:
    """Rule version 4: upgrades take effect at once, prorated; currencies never change."""
    return state.rules >= 4


def upgrades_now(state: SubscriptionState, plan: Plan) -> bool:
    """Whether a change to ``plan`` takes effect at once (rule version 4, an upgrade)."""
    return prorates_upgrades(state) and proration.takes_effect_now(state, plan)


def _upgrade_now(state: SubscriptionState, req: ChangePlan, now: datetime) -> Decision:
    """Rule version 4: charge the prorated difference now (domain.proration.quote, the same
    numbers the preview showed); the plan changes when that charge succeeds. The key is
    built from business facts (subscription, period, n-th change, target plan), so a retried
    charge activity never charges twice."""
    q = proration.quote(state, req.plan, _proration_date(state, req, now), now=True)
    seq = state.plan_changes + 1
    key = f"{state.id}:{state.period_key}:change{seq}:{req.plan.id}"
    upgrade = PlanUpgrade(seq=seq, plan=req.plan, amount=q.amount_due,
                          credits=q.credits_granted, at=now, idempotency_key=key,
                          requested_by=req.requested_by, prorated_from=q.at)
    pending = state.model_copy(update={"plan_changes": seq, "upgrade": upgrade,
                                       "awaiting_charge": key})
    if q.amount_due == 0:  # less than one minor unit left to pay: nothing to charge
        return _upgraded(pending, PaymentOutcome(idempotency_key=key, status="succeeded",
                                                 amount=0), now)
    charge = Charge(idempotency_key=key, period_key=state.period_key, attempt=1,
                    amount=q.amount_due, currency=req.plan.currency, purpose="proration")
    return Decision(state=pending, commands=(charge,))


PRORATION_DATE_MAX_AGE = timedelta(hours=1)
# The preview's clock (the API's or the CLI's host) may run a little ahead of the workflow's.
PRORATION_DATE_SKEW = timedelta(seconds=5)


def _proration_date(state: SubscriptionState, req: ChangePlan, now: datetime) -> datetime:
    """The instant an upgrade is prorated from: ``now``, or the preview's ``at`` the caller
    confirmed (Stripe's ``proration_date``), if it lies in the current period, within the
    last hour (an older quote is previewed again) and not in the future beyond a few seconds
    of clock skew (which only lowers the charge)."""
    at = req.proration_date
    if at is None:
        return now
    earliest = max(state.current_period_start, now - PRORATION_DATE_MAX_AGE)
    latest = min(now + PRORATION_DATE_SKEW, state.current_period_end)
    if not earliest <= at <= latest:
        raise RequestInvalid("proration_date_out_of_range", "proration_date must lie between "
                             f"{earliest.isoformat()} and now ({now.isoformat()}); preview the "
                             "change again", field="proration_date")
    return at


def _upgraded(state: SubscriptionState, outcome: PaymentOutcome, now: datetime) -> Decision:
    """The proration is paid: the new plan applies from now (same period, same anchor), its
    extra credits for the rest of the period are granted under the period's key (so they
    are forfeited with the period, D15), and the events tell the story: ``invoice.paid``
    (billing_reason ``subscription_update``), then ``customer.subscription.updated`` with
    ``previous_attributes.plan``."""
    upgrade = state.upgrade
    assert upgrade is not None
    before = state.model_copy(update={"upgrade": None, "awaiting_charge": None})
    paid = PaidUpgrade(seq=upgrade.seq, amount=outcome.amount,
                       payment_intent_id=outcome.payment_intent_id,
                       covers_from=upgrade.prorated_from or upgrade.at)
    after = before.model_copy(update={
        "plan": upgrade.plan, "pending_plan": None,
        "current_period_upgrades": state.current_period_upgrades + (paid,)})
    commands: tuple[Command, ...] = ()
    if upgrade.credits > 0:
        commands = (GrantCredits(
            idempotency_key=f"{state.id}:{state.period_key}:change{upgrade.seq}:grant",
            period_key=state.period_key, amount=upgrade.credits,
            period_start=state.current_period_start, period_end=state.current_period_end),)
    decision = Decision(state=after, commands=commands)
    if outcome.amount > 0:
        decision = decision.then(_emit(decision.state, "invoice.paid", now, None, {
            "amount_paid": outcome.amount, "billing_reason": "subscription_update",
            "from_plan": before.plan.id, "plan": upgrade.plan.id}))
    return decision.then(_updated(before, decision.state, now, upgrade.requested_by))


def _upgrade_declined(state: SubscriptionState) -> Decision:
    """The proration charge was declined: the upgrade does not happen and nothing else
    changes (no dunning: the period is paid). The caller gets the decline as the answer
    (``change_declined``)."""
    return Decision(state=state.model_copy(update={"upgrade": None, "awaiting_charge": None}))


def change_declined(charge: Charge, outcome: PaymentOutcome, plan: str) -> PaymentDeclined:
    """The answer to an upgrade whose proration charge was declined (HTTP 402)."""
    amount = f"{charge.amount} {charge.currency.upper()} (minor units)"
    return PaymentDeclined(
        "payment_declined", f"the prorated charge of {amount} for the upgrade was declined "
        f"({outcome.decline_code or 'declined'}): the subscription stays on plan {plan}; "
        "update the payment method and try again", field="plan",
        decline_code=outcome.decline_code)


def preview_change(state: SubscriptionState, plan: Plan, now: datetime
                   ) -> proration.PlanChangeQuote:
    """What ``handle(ChangePlan(plan, proration_date=quote.at))`` will do, without doing it:
    raises the refusal it would raise, else the quote it will charge (rule version 4; on
    older rules every change waits for the period end, and the quote says so). ``at`` is
    ``now`` down to the whole second."""
    now = require_utc(now, "now")
    view = _settled_view(state, now)
    if view is None:  # pragma: no cover - needs 16 overdue periods at once
        raise RequestRefused("not_settled", "the subscription is catching up; try again")
    at = now.replace(microsecond=0)  # a whole second: the caller sends it back as is
    _refuse_if_held(view, ChangePlan(plan=plan))
    _change_plan(view, ChangePlan(plan=plan), now)  # raises what handle would raise
    return proration.quote(view, plan, max(at, view.current_period_start),
                           now=upgrades_now(view, plan))


def _accept_retention_offer(state: SubscriptionState, req: AcceptRetentionOffer,
                            now: datetime) -> Decision:
    """D14: the customer keeps the subscription at a discount instead of cancelling. A
    scheduled cancellation is removed (as a reactivation would); the discount applies from
    the next period on, never to one already charged."""
    _refuse_if_ended(state, "offered a discount")
    offer = state.policy.retention_offer
    if offer is None:
        raise RequestRefused("no_retention_offer", "no retention offer is configured")
    if state.retention_offer_used:
        raise RequestRefused("retention_offer_used",
                             "the retention offer was already accepted for this subscription")
    if state.status not in (Status.ACTIVE, Status.NON_RENEWING) or state.in_extension:
        raise RequestRefused("not_eligible", f"a {state.status.value} subscription cannot take "
                             "the retention offer; it applies to a paid, renewing term")
    after = state
    if state.cancel_at is not None:
        after = _reactivate(state, Reactivate(requested_by=req.requested_by), now).state
    after = after.model_copy(update={
        "discount": Discount(offer=offer, periods_left=offer.periods),
        "retention_offer_used": True,
    })
    return _updated(state, after, now, req.requested_by)


_HANDLERS = {
    Cancel: _cancel,
    Reactivate: _reactivate,
    Postpone: _postpone,
    PaymentMethodUpdated: _payment_method_updated,
    Pause: _pause,
    Resume: _resume_request,
    ChangePlan: _change_plan,
    AcceptRetentionOffer: _accept_retention_offer,
    Retry: _retry_held,
}


def handle(state: SubscriptionState, request: Request, now: datetime) -> Decision:
    """Apply a caller's request to a state already advanced to ``now``.

    Raises RequestRefused/RequestInvalid, changing nothing, when the rules forbid it."""
    now = require_utc(now, "now")
    if state.awaiting_charge is not None:
        raise RuntimeError("a charge is in flight; apply its outcome before handling requests")
    if (due := next_wakeup(state)) is not None and due <= now:
        raise RuntimeError("advance the state to now before handling requests")
    _refuse_if_held(state, request)
    return _HANDLERS[type(request)](state, request, now)


def validate(state: SubscriptionState, request: Request, now: datetime) -> None:
    """Raise exactly what ``handle`` would raise at ``now``; change nothing.

    Time-driven transitions due by ``now`` are applied first. A charge they start is assumed
    to succeed: the request is checked again when the workflow actually handles it."""
    view = _settled_view(state, now)
    if view is not None:
        handle(view, request, now)


def _settled_view(state: SubscriptionState, now: datetime) -> SubscriptionState | None:
    """The state at ``now`` with every charge in flight assumed to succeed (None if that
    needs more than 16 charges: a request is then judged by the workflow only)."""
    view = advance(state, now).state
    for _ in range(16):
        if view.awaiting_charge is None:
            return view
        amount = view.upgrade.amount if view.upgrade else view.plan.amount
        assumed = PaymentOutcome(idempotency_key=view.awaiting_charge, status="succeeded",
                                 amount=amount)
        view = advance(apply_outcome(view, assumed, now).state, now).state
    return None  # pragma: no cover - needs 16 overdue periods at once


def period_of(state: SubscriptionState, at: datetime) -> str:
    """The period key containing ``at`` on this subscription's anchor (for reporting)."""
    return period_key(state.anchor_boundary(index_at(
        state.billing_cycle_anchor, state.plan.interval, state.plan.interval_count, at)))
