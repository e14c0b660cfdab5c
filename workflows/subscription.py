"""SubscriptionWorkflow: the durable shell around the pure lifecycle core.

One workflow per subscription (id ``subscription-<id>``). It sleeps until the core's next
wake-up, feeds time, requests and payment outcomes into ``domain.lifecycle``, and executes the
commands it gets back through activities: each Stripe call (charge, refund, pending charges) is
its own activity, and the ledger and event writes of a decision go together through one local
activity (``apply_effects``). Signals and updates (one name per request, its kind:
contract.REQUEST_TYPES) share one inbox processed by the main loop, so every request takes the
same path, strictly one at a time, always after the transitions due at that instant. A run
spans many renewals: it continues as new (once all handlers have finished) when its history
reaches RUN_EVENTS_BOUND events, when a newer rule version can be applied, when the server
suggests it or when a new build became current, so history stays bounded for the lifetime of
a subscription without a new run (and its server cost) every period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import (RawValue, RetryPolicy, SearchAttributePair,
                               TypedSearchAttributes)
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from opentelemetry.context import Context

    from activities.types import (
        ChargeRequest,
        ChargeResult,
        CreditChangeEffect,
        CreditGrant,
        CreditPeriodChange,
        Effect,
        EffectBatch,
        EventEffect,
        GrantEffect,
        InvoiceLine,
        PendingChargesRequest,
        PendingChargesResult,
        RefundRequest,
        RefundResult,
    )
    from domain import lifecycle
    from domain.commands import (
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
        UnlockPurchasedCredits,
    )
    from domain.errors import PaymentDeclined, RequestInvalid, RequestRefused
    from domain.model import Event, SubscriptionState
    from domain.requests import Request, Retry
    from workflows import contract, tracing
    from workflows.failures import call_failed
    from workflows.stripe_calls import (HEARTBEAT_TIMEOUT, STRIPE_ACTIVITIES,
                                        STRIPE_ACTIVITY_TIMEOUT)
    from workflows.types import RejectedSignal, SubscriptionInput

# The other activities: ledger and event writes of runs recorded before the batching.
ACTIVITY_TIMEOUT = timedelta(seconds=60)
# Infrastructure faults are retried until they pass; idempotency keys make that safe.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)
REJECTED_KEPT = 20
# workflow.patched ids: each guards a change of the command sequence for running histories.
PATCH_UNLOCK_ON_SUBSCRIBE = "unlock-purchased-credits-on-subscribe"
# Local writes of a decision go through one local activity; search attributes are upserted
# only when a value changed. Runs recorded before keep one activity per write (and per upsert).
PATCH_BATCHED_EFFECTS = "batched-local-effects"
# A call that failed so that only an operator can fix it holds the subscription (state.hold,
# SubscriptionHeld = true) instead of failing the workflow task; recorded runs from before
# never took this path (their task failed and was retried forever).
PATCH_HOLD_ON_FAILED_CALL = "hold-on-failed-call"
# Rule versions (domain.lifecycle.RULES): a new subscription starts on the current rules, and a
# running one moves to them at continue-as-new after a renewal (a safe point). Histories
# recorded before this patch replay on version 1, the rules they were recorded with.
PATCH_RULE_VERSIONS = "rule-versions"
# Rule version 3 (decline-aware dunning): new subscriptions start on it and running ones move to
# it at continue-as-new. Histories recorded before this patch keep the version they had.
PATCH_RULES_V3 = "rules-v3-decline-aware-dunning"
# Rule version 4 (a same-term upgrade takes effect at once with a prorated charge): new
# subscriptions start on it and running ones move to it at continue-as-new; histories recorded
# before this patch keep the version they had, so their upgrades wait for the period end.
PATCH_RULES_V4 = "rules-v4-prorated-upgrades"
# A run spans renewals and continues as new only when that is worth it (_should_continue_as_new).
# Histories recorded before it continued as new after every renewal, and replay so.
PATCH_RUNS_SPAN_PERIODS = "runs-span-periods"
# The history length (events) at which a run continues as new at its next idle point. A plain
# renewal adds about 13 events, so a monthly run lasts about a year: far below the server's
# 4,096-event suggestion (and 50 MB). Bounded by replay: a worker that no longer caches the run
# (a month between renewals) replays it at its next renewal, about 0.24 ms of worker CPU per
# event here, so at most ~50 ms (README "Benchmarks"). Changing it changes commands of running
# histories: do it behind a new patch.
RUN_EVENTS_BOUND = 200
# The main loop keeps its timer while a request leaves the next wake-up where it was (cancel at
# the period end, reactivate, most requests): no TimerCanceled and TimerStarted in history,
# and no timer task written and deleted on the server, for each request. Histories recorded
# before it started a new timer each time the loop waited, and replay so.
PATCH_KEPT_TIMER = "kept-timer"
# Local activity: runs in the worker inside the workflow task. Retries back off in the worker
# (then through timers) until the database is back; the writes are idempotent.
LOCAL_ACTIVITY_TIMEOUT = timedelta(seconds=30)


@dataclass
class _Inbox:
    request: Request
    wait: bool  # an update waits for the answer; a signal does not
    done: bool = False
    result: SubscriptionState | None = None
    error: RequestRefused | None = None
    trace: Context | None = None  # the caller's trace (workflows.tracing)


@workflow.defn(name=contract.WORKFLOW_TYPE)
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, inp: SubscriptionInput) -> None:
        self.state: SubscriptionState | None = inp.state
        self.inbox: list[_Inbox] = []
        self.rejected: list[RejectedSignal] = []
        self.started_period = inp.state.period_index if inp.state else None
        self.pending: list[Effect] = []  # local writes waiting for the next flush
        # What the visibility store already holds (carried over by continue-as-new).
        self.published = {pair.key.name: pair.value
                          for pair in workflow.info().typed_search_attributes}
        self.batched: bool | None = True if inp.batched else None  # see _batching()
        self.customer_index = inp.customer_index
        # True while the main loop waits with nothing in flight: no charge, no unflushed
        # write (the read model is current). The `settled` update answers then.
        self.idle = False
        # The decline of an upgrade's prorated charge: the answer to the request being handled.
        self.declined: RequestRefused | None = None
        # The main loop's timer and the wake-up it is for (PATCH_KEPT_TIMER, _wait_kept).
        self.kept_timer: bool | None = None
        self.timer: asyncio.Future | None = None
        self.timer_due: datetime | None = None

    # Main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        if self.state is None:
            assert inp.new is not None, "a new subscription or a carried state is required"
            decision = lifecycle.create(inp.new, workflow.now(), self._newest_rules())
            await self._apply(decision)
            self.started_period = self.state.period_index
        while True:
            await self._catch_up()
            while self.inbox and not self.state.ended:
                await self._handle(self.inbox.pop(0))
                await self._catch_up()
            if self.state.ended:
                break
            if self._should_continue_as_new():
                self.idle = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                self.idle = False
                if not self.inbox:
                    self._continue_as_new()
                continue
            self._sync_search_attributes()
            wake = lifecycle.next_wakeup(self.state)
            self.idle = True
            if self._keeps_timer():
                await self._wait_kept(wake)
            else:
                timeout = None if wake is None else max(wake - workflow.now(), timedelta(0))
                try:
                    await workflow.wait_condition(lambda: bool(self.inbox), timeout=timeout)
                except TimeoutError:
                    pass
            self.idle = False
        self._drop_timer()
        # Ended: answer anything still queued (it is refused: the subscription is over).
        for item in self.inbox:
            self._refuse(item, lifecycle.ended_refusal(item.request))
        self.inbox.clear()
        self._sync_search_attributes()
        self.idle = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return _answer(self.state)

    def _keeps_timer(self) -> bool:
        """Asked once per run, at its first wait (PATCH_KEPT_TIMER)."""
        if self.kept_timer is None:
            self.kept_timer = workflow.patched(PATCH_KEPT_TIMER)
        return self.kept_timer

    async def _wait_kept(self, wake: datetime | None) -> None:
        """Until a request arrives or ``wake`` comes, on the timer already running for it if
        there is one: a request that did not move the wake-up leaves it alone."""
        if self.timer_due != wake or (self.timer is not None and self.timer.done()):
            self._drop_timer()
        if self.timer is None and wake is not None:
            delay = wake - workflow.now()
            if delay <= timedelta(0):
                return  # due now: the loop catches up at once
            self.timer, self.timer_due = asyncio.ensure_future(workflow.sleep(delay)), wake
        timer = self.timer
        await workflow.wait_condition(
            lambda: bool(self.inbox) or (timer is not None and timer.done()))

    def _drop_timer(self) -> None:
        if self.timer is not None and not self.timer.done():
            self.timer.cancel()
        self.timer, self.timer_due = None, None

    @staticmethod
    def _newest_rules() -> int:
        """The newest rule version this history allows: each version that changes commands
        came with a patch, so a history recorded before it replays on the rules it had."""
        if workflow.patched(PATCH_RULES_V4):
            return 4
        if workflow.patched(PATCH_RULES_V3):
            return 3
        return 2 if workflow.patched(PATCH_RULE_VERSIONS) else 1

    def _continue_as_new(self) -> None:
        if lifecycle.rules_upgradable(self.state):
            newest = self._newest_rules()
            if lifecycle.rules_upgradable(self.state, newest):
                self.state = lifecycle.upgrade_rules(self.state, newest)
        # With Worker Versioning on (README "Worker Versioning"), a run is pinned to the build
        # that started it and the next run starts on the deployment's current build.
        upgrade = workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE
        if self.batched:
            # The next run starts with this run's final search attributes: no upsert for them.
            workflow.continue_as_new(
                SubscriptionInput(state=self.state, batched=True,
                                  customer_index=self.customer_index),
                search_attributes=TypedSearchAttributes(
                    [pair for pair in self._wanted_search_attributes()
                     if pair.value is not None]),
                initial_versioning_behavior=upgrade)
        workflow.continue_as_new(SubscriptionInput(state=self.state,
                                                   customer_index=self.customer_index),
                                 initial_versioning_behavior=upgrade)

    def _should_continue_as_new(self) -> bool:
        """When the server suggests it; when a new build became current (Worker Versioning: a
        run with no timer, e.g. held or unpaid, moves at its next request instead of staying
        on the old build); at the first idle point after RUN_EVENTS_BOUND events; and after a
        renewal when a newer rule version can be applied (rules change at continue-as-new).
        Histories recorded before PATCH_RUNS_SPAN_PERIODS continued as new after every
        renewal; the patch is asked only where the two rules can differ."""
        info = workflow.info()
        if (info.is_continue_as_new_suggested()
                or info.is_target_worker_deployment_version_changed()):
            return True
        renewed = self.state.period_index != self.started_period
        long = info.get_current_history_length() >= RUN_EVENTS_BOUND
        if not (renewed or long):
            return False
        if not self._runs_span_periods():
            return renewed
        return long or (lifecycle.rules_upgradable(self.state)
                        and lifecycle.rules_upgradable(self.state, self._newest_rules()))

    @staticmethod
    def _runs_span_periods() -> bool:
        return workflow.patched(PATCH_RUNS_SPAN_PERIODS)

    async def _catch_up(self) -> None:
        """Apply every transition due now (renewals, ends, retries) before any request."""
        while True:
            decision = lifecycle.advance(self.state, workflow.now())
            if decision.state == self.state and not decision.commands:
                return
            await self._apply(decision)

    async def _handle(self, item: _Inbox) -> None:
        with tracing.resumed(item.trace):  # its activities join the caller's trace
            try:
                decision = lifecycle.handle(self.state, item.request, workflow.now())
            except RequestRefused as refused:
                self._refuse(item, refused)
                return
            self.declined = None
            await self._apply(decision)
            if self.declined is not None:  # rule version 4: the upgrade did not happen
                self._refuse(item, self.declined)
                return
            item.result, item.done = self.state, True

    def _refuse(self, item: _Inbox, refused: RequestRefused) -> None:
        item.error, item.done = refused, True
        if not item.wait:
            self._reject_signal(item.request.kind, refused)

    # Commands -> activities ------------------------------------------------------------------

    def _batching(self) -> bool:
        """The patch is checked once, at the run's first decision: an old history replays
        with one activity per write from its first command on, a new run batches throughout
        and hands that on through continue-as-new (SubscriptionInput.batched)."""
        if self.batched is None:
            self.batched = workflow.patched(PATCH_BATCHED_EFFECTS)
        return self.batched

    async def _apply(self, decision: lifecycle.Decision) -> None:
        batched = self._batching()
        self.state = decision.state
        self._publish()
        for command in decision.commands:
            effects = self._local_effects(command) if batched else None
            if effects is not None:
                self.pending.extend(effects)
                continue
            await self._flush()  # the core's order: earlier writes land before a payment
            await self._execute(command)
        await self._flush()

    def _local_effects(self, command: Command) -> list[Effect] | None:
        """The batched form of a ledger or event command ([] when it writes nothing); None
        for a command that calls Stripe and therefore runs as its own activity."""
        if isinstance(command, GrantCredits):
            return [GrantEffect(grant=self._grant(command))] if command.amount > 0 else []
        if isinstance(command, ForfeitCredits | LockPurchasedCredits | UnlockPurchasedCredits):
            return [CreditChangeEffect(kind=_CHANGE_ACTIVITY[type(command)],
                                       change=self._change(command))]
        if isinstance(command, Emit):
            return [EventEffect(event=command.event)]
        return None

    async def _flush(self) -> None:
        effects, self.pending = self.pending, []
        if effects:
            await self._activity("apply_effects", EffectBatch(
                subscription_id=self.state.id, effects=effects), int,
                f"{self.state.id}:effects", local=True)

    def _grant(self, command: GrantCredits) -> CreditGrant:
        s = self.state
        return CreditGrant(
            idempotency_key=command.idempotency_key, customer_id=s.customer_id,
            subscription_id=s.id, period_key=command.period_key, amount=command.amount,
            period_start=command.period_start, period_end=command.period_end)

    def _change(self, command: ForfeitCredits | LockPurchasedCredits | UnlockPurchasedCredits
                ) -> CreditPeriodChange:
        s = self.state
        return CreditPeriodChange(
            idempotency_key=command.idempotency_key, customer_id=s.customer_id,
            subscription_id=s.id, period_key=command.period_key, at=command.at)

    async def _execute(self, command: Command) -> None:
        s = self.state
        if isinstance(command, Charge):
            description = f"{s.plan.name} {command.period_key} (attempt {command.attempt})"
            if command.purpose == "proration" and s.upgrade is not None:
                description = (f"{s.plan.name} -> {s.upgrade.plan.name}, prorated for the rest "
                               f"of {command.period_key}")
            try:
                result = await self._run("charge", ChargeRequest(
                    idempotency_key=command.idempotency_key, subscription_id=s.id,
                    customer_id=s.customer_id, amount=command.amount,
                    currency=command.currency, description=description,
                    purpose=command.purpose, period_key=command.period_key,
                    lines=_invoice_lines(s, command, description)), ChargeResult)
            except ActivityError as err:
                # The core takes the charge back and keeps handling cancel, reactivate and
                # postpone; an operator's Retry issues it again with the same key.
                failure = self._failed("charge", command.idempotency_key, err, charge=command)
                await self._apply(lifecycle.hold(self.state, failure, workflow.now()))
                self._announce_hold()
                return
            _check_belongs(result, command)
            outcome = PaymentOutcome(
                idempotency_key=command.idempotency_key, status=result.status,
                amount=command.amount if result.status == "succeeded" else 0,
                payment_intent_id=result.payment_intent_id,
                decline_code=result.decline_code, message=result.message)
            if command.purpose == "proration" and result.status == "declined":
                self.declined = lifecycle.change_declined(command, outcome, s.plan.id)
            await self._apply(lifecycle.apply_outcome(self.state, outcome, workflow.now()))
        # Ledger and event commands reach here only in runs recorded before the batching.
        elif isinstance(command, GrantCredits):
            await self._activity("grant_period_credits", self._grant(command), None,
                                 command.idempotency_key)
        elif isinstance(command, ForfeitCredits | LockPurchasedCredits):
            await self._activity(_CHANGE_ACTIVITY[type(command)], self._change(command), None,
                                 command.idempotency_key)
        elif isinstance(command, UnlockPurchasedCredits):  # D12: new; absent from old histories
            if (command.idempotency_key.endswith(lifecycle.SUBSCRIBE_UNLOCK)
                    and not workflow.patched(PATCH_UNLOCK_ON_SUBSCRIBE)):
                return  # a history recorded before the D16 unlock on subscribe existed
            await self._activity("unlock_purchased_credits", self._change(command), None,
                                 command.idempotency_key)
        elif isinstance(command, CollectPendingCharges | DiscardPendingCharges):
            key = command.idempotency_key
            request = PendingChargesRequest(
                idempotency_key=key, subscription_id=s.id,
                customer_id=s.customer_id, currency=command.currency,
                period_key=command.period_key)
            if isinstance(command, CollectPendingCharges):
                await self._activity("collect_pending_charges", request, PendingChargesResult,
                                     key)
            else:
                await self._activity("discard_pending_charges", request, PendingChargesResult,
                                     key)
                await self._activity("close_open_charges", s.id, None, key)
        elif isinstance(command, Refund):
            await self._activity("refund", RefundRequest(
                idempotency_key=command.idempotency_key, subscription_id=s.id,
                payment_intent_id=command.payment_intent_id, amount=command.amount,
                reason=command.reason), RefundResult, command.idempotency_key)
        elif isinstance(command, Emit):
            await self._activity("record_event", command.event, None, command.event.id)
        else:  # pragma: no cover - a new command without a mapping is a bug
            raise RuntimeError(f"no activity for command {command!r}")

    async def _run(self, name: str, arg, result_type, *, local: bool = False):
        """One activity, retried by Temporal while its errors are retryable, for at most the
        policy's alarm bound; what still fails after that raises ActivityError."""
        bound = self.state.policy.call_alarm_after
        if local:
            return await workflow.execute_local_activity(
                name, arg, result_type=result_type, start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=bound, retry_policy=ACTIVITY_RETRY)
        stripe = name in STRIPE_ACTIVITIES
        return await workflow.execute_activity(
            name, arg, result_type=result_type, retry_policy=ACTIVITY_RETRY,
            start_to_close_timeout=STRIPE_ACTIVITY_TIMEOUT if stripe else ACTIVITY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT if stripe else None,
            schedule_to_close_timeout=bound)

    async def _activity(self, name: str, arg, result_type, key: str, *, local: bool = False):
        """A call that must happen before the rest of the decision: on a failure only an
        operator can fix, the workflow waits here, held, and runs it again (same arguments,
        same idempotency key) on the operator's Retry."""
        while True:
            try:
                return await self._run(name, arg, result_type, local=local)
            except ActivityError as err:
                failure = self._failed(name, key, err)
            self.state = lifecycle.hold(self.state, failure, workflow.now()).state
            self._publish()
            self._announce_hold()
            self.idle = True  # held is a settled state: `settled` answers with it
            await workflow.wait_condition(self._retry_requested)
            self.idle = False
            item = next(i for i in self.inbox if isinstance(i.request, Retry))
            self.inbox.remove(item)
            self.state = lifecycle.release(self.state).state
            self._publish()
            item.result, item.done = self.state, True

    def _retry_requested(self) -> bool:
        return any(isinstance(item.request, Retry) for item in self.inbox)

    def _failed(self, name: str, key: str, err: ActivityError, charge: Charge | None = None):
        if not workflow.patched(PATCH_HOLD_ON_FAILED_CALL):  # pragma: no cover - old runs
            raise RuntimeError(f"activity {name} failed permanently: {err.cause}") from err
        return call_failed(name, key, err, charge)

    def _announce_hold(self) -> None:
        """What an operator is shown: the workflow's log line (JSON in the worker's log, with
        Stripe's request id), a metric, SubscriptionHeld = true and the current details."""
        held = self.state.hold
        if held is None:  # e.g. the hold ended the same decision (cannot today)
            return
        workflow.logger.error(
            "subscription held: %s failed (%s): %s", held.activity, held.code, held.message,
            extra={"hold_code": held.code, "activity": held.activity,
                   "idempotency_key": held.idempotency_key,
                   "stripe_request_id": held.stripe_request_id})
        workflow.metric_meter().create_counter(
            "subscription_holds", "Subscriptions held for an operator's retry").add(
            1, {"code": held.code, "activity": held.activity})
        self._sync_search_attributes()

    # Visibility --------------------------------------------------------------------------------

    def _wanted_search_attributes(self) -> list[SearchAttributePair]:
        s = self.state
        pairs = [SearchAttributePair(key, value) for key, value in (
            (contract.STATUS, s.status.value),
            (contract.CUSTOMER, self.customer_index or s.customer_id),
            (contract.ORGANIZATION, s.organization_id), (contract.PLAN, s.plan.id),
            (contract.PERIOD_END, s.current_period_end), (contract.CANCEL_AT, s.cancel_at))]
        # Only once a hold happened: runs recorded before holds existed never upsert it.
        if s.hold is not None or contract.HELD.name in self.published:
            pairs.append(SearchAttributePair(contract.HELD, s.hold is not None))
        return pairs

    def _upsert(self, pairs: list[SearchAttributePair]) -> None:
        if pairs:
            workflow.upsert_search_attributes([
                pair.key.value_set(pair.value) if pair.value is not None
                else pair.key.value_unset() for pair in pairs])
            self.published.update((pair.key.name, pair.value) for pair in pairs)

    def _sync_search_attributes(self) -> None:
        """Batched runs publish when the workflow goes idle (before it waits), only what
        changed: each upsert is a history event and a visibility-store write. While an
        activity is in flight the UI shows the state before it; a renewal's new period end
        reaches the next run through continue-as-new instead of an upsert."""
        if self.batched:
            self._upsert([pair for pair in self._wanted_search_attributes()
                          if self.published.get(pair.key.name) != pair.value])

    def _publish(self) -> None:
        s = self.state
        if not self.batched:  # runs recorded before the batching: every attribute, every time
            self._upsert(self._wanted_search_attributes())
        elif not self.published:  # a new subscription is searchable before its first charge
            self._sync_search_attributes()
        workflow.set_current_details(
            f"**{s.status.value}** · plan `{s.plan.id}` · customer `{s.customer_id}`\n\n"
            f"period {s.current_period_start.isoformat()} → {s.current_period_end.isoformat()}"
            + (f"\n\n{s.renewal_line}" if s.renewal_line else "")
            + (f"\n\ndunning: attempt {s.dunning.attempts}, next retry "
               f"{s.dunning.next_retry_at}" if s.dunning and not s.dunning.requires else "")
            + (f"\n\ndunning: attempt {s.dunning.attempts} declined "
               f"({s.dunning.last_decline_code}), not retried: waiting for the customer "
               f"({s.dunning.requires}) until {s.dunning.ends_at}"
               if s.dunning and s.dunning.requires else "")
            + (f"\n\n**held** since {s.hold.since.isoformat()}: `{s.hold.activity}` failed "
               f"({s.hold.code}): {s.hold.message}\n\nfix the cause, then send the `retry` "
               f"signal or `subs retry {s.id}`" if s.hold else ""))

    # Queries -----------------------------------------------------------------------------------

    @workflow.query(name=contract.QUERY_STATE)
    def query_state(self) -> SubscriptionState:
        return _answer(self.state) if self.state else self.state

    @workflow.query(name=contract.QUERY_EVENTS)
    def query_events(self) -> list[Event]:
        return list(self.state.recent_events) if self.state else []

    @workflow.query(name=contract.QUERY_REJECTED)
    def query_rejected(self) -> list[RejectedSignal]:
        return self.rejected

    # Requests: one name each (its kind), as a signal or an update, from contract's table ------

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Fire-and-forget: queued for the main loop, which judges it in turn. A name we do
        not know or input that is not a request is refused here and recorded (the
        `rejected_signals` query), never dropped."""
        try:
            request = self._decode(name, args)
        except RequestRefused as refused:
            self._reject_signal(name, refused)
            return
        self.inbox.append(_Inbox(request, wait=False, trace=tracing.carry()))

    @workflow.update(dynamic=True)
    async def on_update(self, name: str, args: Sequence[RawValue]) -> SubscriptionState:
        """Validated first (below); answers with the new state or the rule's refusal."""
        return await self._submit(self._decode(name, args))

    @on_update.validator
    def _validate_update(self, name: str, args: Sequence[RawValue]) -> None:
        try:
            request = self._decode(name, args)
        except RequestRefused as refused:
            raise _application_error(refused) from None
        self._validate(request)

    def _decode(self, name: str, args: Sequence[RawValue]) -> Request:
        kind = contract.LEGACY_UPDATE_NAMES.get(name, name)
        model = contract.REQUEST_TYPES.get(kind)
        if model is None:
            raise RequestInvalid("unknown_request", f"no request is named {name!r}; known: "
                                 f"{', '.join(contract.REQUEST_TYPES)}")
        if len(args) != 1:
            raise RequestInvalid("malformed_request", f"{kind} takes one argument, the "
                                 f"request object; got {len(args)}")
        try:
            return workflow.payload_converter().from_payload(args[0].payload, model)
        except Exception as err:  # noqa: BLE001 - any decoding failure is the caller's input
            detail = " ".join(str(err).split())[:300]
            raise RequestInvalid("malformed_request", f"{kind}: not a valid request: "
                                 f"{detail}") from None

    def _reject_signal(self, kind: str, refused: RequestRefused) -> None:
        workflow.logger.warning("signal %s refused: %s", kind, refused.message)
        self.rejected = (self.rejected + [RejectedSignal(
            at=workflow.now(), kind=kind, code=refused.code,
            message=refused.message)])[-REJECTED_KEPT:]

    async def _submit(self, request: Request) -> SubscriptionState:
        item = _Inbox(request, wait=True, trace=tracing.carry())
        self.inbox.append(item)
        await workflow.wait_condition(lambda: item.done)
        if item.error is not None:
            raise _application_error(item.error)
        return _answer(item.result)

    def _validate(self, request: Request) -> None:
        if self.state is None:
            raise ApplicationError("the subscription is starting; try again",
                                   type="not_ready", non_retryable=True)
        held = self.state.hold
        if held is not None and held.charge_attempt is None:  # held in the middle of a call
            if isinstance(request, Retry):
                return
            raise _application_error(RequestRefused(
                "subscription_held", f"the subscription is waiting for an operator "
                f"({held.code}); {request.kind} is possible once it is retried"))
        if self.inbox:
            # Requests queued ahead (signals or updates) change the state before this one is
            # handled: judged now, a reactivate queued behind a cancel would be refused. The
            # main loop judges it in turn and refuses it then, with the same reason.
            return
        try:
            lifecycle.validate(self.state, request, workflow.now())
        except RequestRefused as refused:
            raise _application_error(refused) from None

    @workflow.update(name=contract.UPDATE_SETTLED)
    async def update_settled(self) -> SubscriptionState:
        """The state once nothing is in flight (the first charge has its outcome, the read
        model is written): what a caller that just started the workflow waits for, in one
        call instead of polling. Changes nothing, so it needs no validator."""
        await workflow.wait_condition(lambda: self.idle)
        return _answer(self.state)


def _answer(state: SubscriptionState) -> SubscriptionState:
    """The state as callers get it (an update's answer, the ``state`` query, the finished
    workflow's result): without its recent events. They are 25 full snapshots, 25 of the
    26 KB of a state, which every update would otherwise store in history and send to its
    caller; the ``events`` query and the event log serve them. Only answers change, no
    command, so recorded histories replay."""
    return state.model_copy(update={"recent_events": ()}) if state.recent_events else state


class ForeignResult(RuntimeError):
    """An activity answered for another command: a bug (a rule change feeding one period's
    result into another), never a business outcome. It fails the workflow task loudly, so the
    run stops before acting on it and resumes once the code is fixed."""


def _invoice_lines(s: SubscriptionState, charge: Charge,
                   description: str) -> list[InvoiceLine]:
    """The invoice of a period's charge: the plan's price for the period, and the discount
    (D14) when the period costs less; an upgrade's prorated charge is its one line. Only the
    activity's input: no command changes."""
    period = {"plan": s.plan.id, "period_start": s.current_period_start,
              "period_end": s.current_period_end}
    if charge.purpose == "proration":
        target = s.upgrade.plan.id if s.upgrade is not None else s.plan.id
        return [InvoiceLine(kind="proration", description=description, amount=charge.amount,
                            **{**period, "plan": target})]
    lines = [InvoiceLine(kind="subscription", description=f"{s.plan.name} subscription",
                         amount=s.plan.amount, **period)]
    if charge.amount != s.plan.amount:
        lines.append(InvoiceLine(kind="discount", description="Discount",
                                 amount=charge.amount - s.plan.amount, **period))
    return lines


def _check_belongs(result: ChargeResult, charge: Charge) -> None:
    expected = (charge.idempotency_key, charge.amount, charge.period_key)
    got = (result.idempotency_key,
           charge.amount if result.amount is None else result.amount,
           charge.period_key if result.period_key is None else result.period_key)
    if got != expected:
        raise ForeignResult(f"charge result {got} does not belong to the charge issued "
                            f"{expected} (idempotency key, amount, period)")


_CHANGE_ACTIVITY = {ForfeitCredits: "forfeit_period_credits",
                    LockPurchasedCredits: "lock_purchased_credits",
                    UnlockPurchasedCredits: "unlock_purchased_credits"}


def _application_error(refused: RequestRefused) -> ApplicationError:
    """Refusals cross the wire as ApplicationError: type = rule code, details = the body."""
    return ApplicationError(
        refused.message,
        {"code": refused.code, "message": refused.message, "field": refused.field,
         "http_status": refused.http_status,
         **({"decline_code": refused.decline_code} if isinstance(refused, PaymentDeclined)
            else {})},
        type=refused.code, non_retryable=True)
