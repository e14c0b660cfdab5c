"""SubscriptionWorkflow: the durable shell around the pure lifecycle core.

One workflow per subscription (id ``subscription-<id>``). It sleeps until the core's next
wake-up, feeds time, requests and payment outcomes into ``domain.lifecycle``, and executes the
commands it gets back through activities: each Stripe call (charge, refund, pending charges) is
its own activity, and the ledger and event writes of a decision go together through one local
activity (``apply_effects``). Signals and updates share one inbox processed by the
main loop, so every request takes the same path, strictly one at a time, always after the
transitions due at that instant. It continues as new after each renewal, once all handlers
have finished, so history stays bounded for the lifetime of a subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
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
    from domain.errors import RequestRefused
    from domain.model import Event, SubscriptionState
    from domain.requests import Cancel, PaymentMethodUpdated, Postpone, Reactivate, Request
    from domain.requests import AcceptRetentionOffer, ChangePlan, Pause, Resume
    from workflows import contract
    from workflows.types import RejectedSignal, SubscriptionInput

# The other activities: ledger and event writes of runs recorded before the batching.
ACTIVITY_TIMEOUT = timedelta(seconds=60)
# The activities that call Stripe heartbeat every second while they run (activities.heartbeat).
STRIPE_ACTIVITIES = frozenset({"charge", "refund", "collect_pending_charges",
                               "discard_pending_charges", "close_open_charges"})
# A worker that dies mid-call stops heartbeating: its attempt is retried elsewhere this long
# after its last heartbeat, not after start-to-close. The SDK sends one heartbeat per 0.8 x this
# (8 s), leaving 2 s for the network and a busy worker.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Bounds a call stuck in a live worker: a Stripe activity makes up to three requests (a retry
# retrieves the intent before confirming it), each bounded by Stripe's request timeout
# (settings.stripe.request_timeout_seconds, 20 s), plus up to 30 s queued at the rate limiter.
STRIPE_ACTIVITY_TIMEOUT = timedelta(seconds=3 * 20 + 30)
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

    # Main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        if self.state is None:
            assert inp.new is not None, "a new subscription or a carried state is required"
            decision = lifecycle.create(inp.new, workflow.now())
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
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.inbox:
                    self._continue_as_new()
                continue
            self._sync_search_attributes()
            wake = lifecycle.next_wakeup(self.state)
            timeout = None if wake is None else max(wake - workflow.now(), timedelta(0))
            try:
                await workflow.wait_condition(lambda: bool(self.inbox), timeout=timeout)
            except TimeoutError:
                pass
        # Ended: answer anything still queued (it is refused: the subscription is over).
        for item in self.inbox:
            self._refuse(item, RequestRefused("subscription_ended", lifecycle.ENDED_MESSAGE
                                              if isinstance(item.request, Reactivate) else
                                              "the subscription has already ended"))
        self.inbox.clear()
        self._sync_search_attributes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    def _continue_as_new(self) -> None:
        if self.batched:
            # The next run starts with this run's final search attributes: no upsert for them.
            workflow.continue_as_new(
                SubscriptionInput(state=self.state, batched=True),
                search_attributes=TypedSearchAttributes(
                    [pair for pair in self._wanted_search_attributes()
                     if pair.value is not None]))
        workflow.continue_as_new(SubscriptionInput(state=self.state))

    def _should_continue_as_new(self) -> bool:
        return (self.state.period_index != self.started_period
                or workflow.info().is_continue_as_new_suggested())

    async def _catch_up(self) -> None:
        """Apply every transition due now (renewals, ends, retries) before any request."""
        while True:
            decision = lifecycle.advance(self.state, workflow.now())
            if decision.state == self.state and not decision.commands:
                return
            await self._apply(decision)

    async def _handle(self, item: _Inbox) -> None:
        try:
            decision = lifecycle.handle(self.state, item.request, workflow.now())
        except RequestRefused as refused:
            self._refuse(item, refused)
            return
        await self._apply(decision)
        item.result, item.done = self.state, True

    def _refuse(self, item: _Inbox, refused: RequestRefused) -> None:
        item.error, item.done = refused, True
        if not item.wait:
            workflow.logger.warning("signal %s refused: %s", item.request.kind, refused.message)
            self.rejected = (self.rejected + [RejectedSignal(
                at=workflow.now(), kind=item.request.kind, code=refused.code,
                message=refused.message)])[-REJECTED_KEPT:]

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
                subscription_id=self.state.id, effects=effects), int, local=True)

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
            result = await self._activity("charge", ChargeRequest(
                idempotency_key=command.idempotency_key, subscription_id=s.id,
                customer_id=s.customer_id, amount=command.amount, currency=command.currency,
                description=f"{s.plan.name} {command.period_key} (attempt {command.attempt})",
                purpose=command.purpose, period_key=command.period_key), ChargeResult)
            outcome = PaymentOutcome(
                idempotency_key=command.idempotency_key, status=result.status,
                amount=command.amount if result.status == "succeeded" else 0,
                payment_intent_id=result.payment_intent_id,
                decline_code=result.decline_code, message=result.message)
            await self._apply(lifecycle.apply_outcome(self.state, outcome, workflow.now()))
        # Ledger and event commands reach here only in runs recorded before the batching.
        elif isinstance(command, GrantCredits):
            await self._activity("grant_period_credits", self._grant(command), None)
        elif isinstance(command, ForfeitCredits | LockPurchasedCredits):
            await self._activity(_CHANGE_ACTIVITY[type(command)], self._change(command), None)
        elif isinstance(command, UnlockPurchasedCredits):  # D12: new; absent from old histories
            if (command.idempotency_key.endswith(lifecycle.SUBSCRIBE_UNLOCK)
                    and not workflow.patched(PATCH_UNLOCK_ON_SUBSCRIBE)):
                return  # a history recorded before the D16 unlock on subscribe existed
            await self._activity("unlock_purchased_credits", self._change(command), None)
        elif isinstance(command, CollectPendingCharges | DiscardPendingCharges):
            request = PendingChargesRequest(
                idempotency_key=command.idempotency_key, subscription_id=s.id,
                customer_id=s.customer_id, currency=command.currency,
                period_key=command.period_key)
            if isinstance(command, CollectPendingCharges):
                await self._activity("collect_pending_charges", request, PendingChargesResult)
            else:
                await self._activity("discard_pending_charges", request, PendingChargesResult)
                await self._activity("close_open_charges", s.id, None)
        elif isinstance(command, Refund):
            await self._activity("refund", RefundRequest(
                idempotency_key=command.idempotency_key, subscription_id=s.id,
                payment_intent_id=command.payment_intent_id, amount=command.amount,
                reason=command.reason), RefundResult)
        elif isinstance(command, Emit):
            await self._activity("record_event", command.event, None)
        else:  # pragma: no cover - a new command without a mapping is a bug
            raise RuntimeError(f"no activity for command {command!r}")

    async def _activity(self, name: str, arg, result_type, *, local: bool = False):
        try:
            if local:
                return await workflow.execute_local_activity(
                    name, arg, result_type=result_type,
                    start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY)
            return await workflow.execute_activity(
                name, arg, result_type=result_type, retry_policy=ACTIVITY_RETRY,
                start_to_close_timeout=STRIPE_ACTIVITY_TIMEOUT if name in STRIPE_ACTIVITIES
                else ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT if name in STRIPE_ACTIVITIES else None)
        except ActivityError as err:
            # Only non-retryable failures get here (bad configuration, a bug). Failing the
            # workflow task (not the workflow) keeps the subscription alive and visible in the
            # UI until an operator fixes the cause; the task is then retried.
            raise RuntimeError(f"activity {name} failed permanently: {err.cause}") from err

    # Visibility --------------------------------------------------------------------------------

    def _wanted_search_attributes(self) -> list[SearchAttributePair]:
        s = self.state
        return [SearchAttributePair(key, value) for key, value in (
            (contract.STATUS, s.status.value), (contract.CUSTOMER, s.customer_id),
            (contract.ORGANIZATION, s.organization_id), (contract.PLAN, s.plan.id),
            (contract.PERIOD_END, s.current_period_end), (contract.CANCEL_AT, s.cancel_at))]

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
               f"{s.dunning.next_retry_at}" if s.dunning else ""))

    # Queries -----------------------------------------------------------------------------------

    @workflow.query(name=contract.QUERY_STATE)
    def query_state(self) -> SubscriptionState:
        return self.state

    @workflow.query(name=contract.QUERY_EVENTS)
    def query_events(self) -> list[Event]:
        return list(self.state.recent_events) if self.state else []

    @workflow.query(name=contract.QUERY_REJECTED)
    def query_rejected(self) -> list[RejectedSignal]:
        return self.rejected

    # Signals: fire-and-forget ------------------------------------------------------------------

    @workflow.signal(name=contract.SIGNAL_CANCEL)
    def signal_cancel(self, request: Cancel) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_REACTIVATE)
    def signal_reactivate(self, request: Reactivate) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_POSTPONE)
    def signal_postpone(self, request: Postpone) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_PAYMENT_METHOD_UPDATED)
    def signal_payment_method_updated(self, request: PaymentMethodUpdated) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_PAUSE)
    def signal_pause(self, request: Pause) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_RESUME)
    def signal_resume(self, request: Resume) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_CHANGE_PLAN)
    def signal_change_plan(self, request: ChangePlan) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    @workflow.signal(name=contract.SIGNAL_ACCEPT_RETENTION_OFFER)
    def signal_accept_retention_offer(self, request: AcceptRetentionOffer) -> None:
        self.inbox.append(_Inbox(request, wait=False))

    # Updates: validated, answer with the new state -----------------------------------------------

    async def _submit(self, request: Request) -> SubscriptionState:
        item = _Inbox(request, wait=True)
        self.inbox.append(item)
        await workflow.wait_condition(lambda: item.done)
        if item.error is not None:
            raise _application_error(item.error)
        return item.result

    def _validate(self, request: Request) -> None:
        if self.state is None:
            raise ApplicationError("the subscription is starting; try again",
                                   type="not_ready", non_retryable=True)
        if self.inbox:
            # Requests queued ahead (signals or updates) change the state before this one is
            # handled: judged now, a reactivate queued behind a cancel would be refused. The
            # main loop judges it in turn and refuses it then, with the same reason.
            return
        try:
            lifecycle.validate(self.state, request, workflow.now())
        except RequestRefused as refused:
            raise _application_error(refused) from None

    @workflow.update(name=contract.UPDATE_CANCEL)
    async def update_cancel(self, request: Cancel) -> SubscriptionState:
        return await self._submit(request)

    @update_cancel.validator
    def _validate_cancel(self, request: Cancel) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_REACTIVATE)
    async def update_reactivate(self, request: Reactivate) -> SubscriptionState:
        return await self._submit(request)

    @update_reactivate.validator
    def _validate_reactivate(self, request: Reactivate) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_POSTPONE)
    async def update_postpone(self, request: Postpone) -> SubscriptionState:
        return await self._submit(request)

    @update_postpone.validator
    def _validate_postpone(self, request: Postpone) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_PAYMENT_METHOD)
    async def update_payment_method(self, request: PaymentMethodUpdated) -> SubscriptionState:
        return await self._submit(request)

    @update_payment_method.validator
    def _validate_payment_method(self, request: PaymentMethodUpdated) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_PAUSE)
    async def update_pause(self, request: Pause) -> SubscriptionState:
        return await self._submit(request)

    @update_pause.validator
    def _validate_pause(self, request: Pause) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_RESUME)
    async def update_resume(self, request: Resume) -> SubscriptionState:
        return await self._submit(request)

    @update_resume.validator
    def _validate_resume(self, request: Resume) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_CHANGE_PLAN)
    async def update_change_plan(self, request: ChangePlan) -> SubscriptionState:
        return await self._submit(request)

    @update_change_plan.validator
    def _validate_change_plan(self, request: ChangePlan) -> None:
        self._validate(request)

    @workflow.update(name=contract.UPDATE_ACCEPT_RETENTION_OFFER)
    async def update_accept_retention_offer(self, request: AcceptRetentionOffer
                                            ) -> SubscriptionState:
        return await self._submit(request)

    @update_accept_retention_offer.validator
    def _validate_accept_retention_offer(self, request: AcceptRetentionOffer) -> None:
        self._validate(request)


_CHANGE_ACTIVITY = {ForfeitCredits: "forfeit_period_credits",
                    LockPurchasedCredits: "lock_purchased_credits",
                    UnlockPurchasedCredits: "unlock_purchased_credits"}


def _application_error(refused: RequestRefused) -> ApplicationError:
    """Refusals cross the wire as ApplicationError: type = rule code, details = the body."""
    return ApplicationError(
        refused.message,
        {"code": refused.code, "message": refused.message, "field": refused.field,
         "http_status": refused.http_status},
        type=refused.code, non_retryable=True)
