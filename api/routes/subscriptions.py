"""/v1/subscriptions: create, read, list, cancel, reactivate, postpone, pause, resume,
change_plan, preview, events.

Changes go to the workflow as validated updates (``client_ops.send``): the workflow's own rules
accept or refuse them, with the same reason the CLI and signals get. An ``Idempotency-Key``
header becomes the update id (per operation), so a retried call answers with the first outcome.
Who may change a subscription is read from the read model; every Temporal call has the API's
deadline (api/outages.py says what a caller gets past it).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from accounts.ids import new_id
from accounts.keys import Principal
from config.plans import PlanCatalog
from api.deps import (
    BillingManagerDep,
    CatalogDep,
    DeadlineDep,
    EngineDep,
    LedgerDep,
    NowDep,
    PaymentsDep,
    ReaderDep,
    SettingsDep,
    TemporalDep,
)
from api.outages import temporal_timeout
from api.params import IdempotencyKey, SubscriptionId
from api.preview import CancellationPreview, build_preview
from api.problems import ApiProblem, invalid, not_found, problem_responses
from api.schemas.subscriptions import (
    CancelBody,
    ChangePlanBody,
    CreateSubscription,
    EventList,
    EventResource,
    PauseBody,
    PostponeBody,
    Requester,
    ResumeBody,
    SubscriptionList,
    SubscriptionResource,
)
from api.scope import (
    live_state,
    organization_for,
    visible,
    visible_customer,
    visible_state,
    visible_view,
)
from domain import lifecycle
from domain.lifecycle import NewSubscription
from domain.model import Status
from domain.plans import Plan
from domain.proration import PlanChangeQuote
from domain.requests import AcceptRetentionOffer, Cancel, ChangePlan, Pause, Postpone, Reactivate, Request, Resume
from eventlog import store as eventlog
from workflows import client_ops
from workflows.client_ops import DeadlineExceeded

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


def _idempotent_subscription_id(principal: Principal, key: str) -> str:
    """The same key from the same caller names the same subscription, so a retried create
    finds the workflow it started instead of starting another (ids are never reused)."""
    digest = hashlib.sha256(f"{principal.organization_id or principal.key_id}:{key}".encode())
    return "sub_" + digest.hexdigest()[:20]


@router.post("", status_code=201, response_model=SubscriptionResource,
             responses=problem_responses(401, 404, 409, 422, 503, 504),
             summary="Create a subscription")
async def create_subscription(body: CreateSubscription, principal: BillingManagerDep,
                              engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                              deadline: DeadlineDep, catalog: CatalogDep, now: NowDep,
                              idempotency_key: IdempotencyKey = None) -> SubscriptionResource:
    """Starts the subscription's workflow; the first period is charged at once (unless it
    starts later or has a trial). Answers once that charge has its outcome (`active`, or
    `incomplete` if declined) and the subscription is listed. A new subscription after an
    ended one starts a new billing cycle (D4): pass `trial_end` at the old renewal date to
    keep the anchor. A 504 names the `subscription` it may have started: retry with the same
    Idempotency-Key to get its outcome."""
    customer = await visible_customer(engine, principal, body.customer)
    plan = catalog.get(body.plan)
    if plan is None:
        known = ", ".join(p.id for p in catalog.plans)
        raise invalid("plan", "unknown_plan", f"no such plan: {body.plan}; choose one of {known}")
    subscription_id = (_idempotent_subscription_id(principal, idempotency_key)
                       if idempotency_key else new_id("sub"))
    new = NewSubscription(id=subscription_id, customer_id=customer.id,
                          organization_id=customer.organization_id, plan=plan,
                          policy=client_ops.policy_from_settings(settings),
                          start_date=body.start_date, trial_end=body.trial_end,
                          requested_by=principal.actor)
    lifecycle.create(new, now)  # the core's own checks (e.g. trial_end), before anything starts
    try:
        state = await client_ops.start_settled(client, new, settings.temporal.task_queue,
                                               timeout=deadline)
    except WorkflowAlreadyStartedError:  # this key's subscription exists and has ended
        state = await visible_state(client, principal, subscription_id, deadline)
    except DeadlineExceeded as err:  # started or not: the same key (or a GET) finds out
        raise temporal_timeout(subscription=subscription_id) from err
    visible(principal, "subscription", subscription_id, state)
    if (state.customer_id, state.plan.id) != (customer.id, plan.id):
        raise ApiProblem(409, "request-refused", "this Idempotency-Key was already used "
                         "for a different subscription", code="idempotency_key_reused")
    return SubscriptionResource.from_state(state, now)


@router.get("", response_model=SubscriptionList,
            responses=problem_responses(401, 404, 422, 503),
            summary="List subscriptions")
async def list_subscriptions(
    principal: ReaderDep, engine: EngineDep, now: NowDep,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    status: Status | None = None,
    plan: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(max_length=64, description=(
        "The last id of the previous page."))] = None,
    organization: Annotated[str | None, Query(max_length=64, description=(
        "Operator keys only: the organization to list."))] = None,
) -> SubscriptionList:
    """Newest state of each subscription from the read model, ordered by id: the same fields
    as retrieving each one (the read model follows the workflow's events; no workflow is
    asked)."""
    org = await organization_for(engine, principal, organization)
    views = await run_in_threadpool(
        eventlog.list_views, engine, org, customer_id=customer,
        status=status.value if status else None, plan_id=plan, limit=limit + 1,
        starting_after=starting_after)
    views, has_more = views[:limit], len(views) > limit
    return SubscriptionList(data=[SubscriptionResource.from_view(view, now) for view in views],
                            has_more=has_more)


@router.get("/{subscription_id}", response_model=SubscriptionResource,
            responses=problem_responses(401, 404, 422, 503, 504),
            summary="Retrieve a subscription")
async def get_subscription(subscription_id: SubscriptionId, principal: ReaderDep,
                           client: TemporalDep, deadline: DeadlineDep, engine: EngineDep,
                           now: NowDep) -> SubscriptionResource:
    """The live state, read from the subscription's workflow (for an ended subscription whose
    workflow history the server no longer keeps, the read model's last state)."""
    state = await live_state(client, subscription_id, deadline)
    if state is not None:
        return SubscriptionResource.from_state(
            visible(principal, "subscription", subscription_id, state), now)
    return SubscriptionResource.from_view(
        await visible_view(engine, principal, subscription_id), now)


class _Updates:
    """A change to a subscription: authorized from the read model (one row, no workflow
    query), then sent to the workflow as an update, within the deadline."""

    def __init__(self, client: TemporalDep, engine: EngineDep, deadline: DeadlineDep) -> None:
        self.client, self.engine, self.deadline = client, engine, deadline

    async def send(self, principal: Principal, subscription_id: str, request: Request,
                   operation: str, idempotency_key: str | None,
                   now: datetime) -> SubscriptionResource:
        view = await visible_view(self.engine, principal, subscription_id)
        update_id = f"{operation}:{idempotency_key}" if idempotency_key else None
        try:
            state = await client_ops.send(self.client, subscription_id, request,
                                          update_id=update_id, timeout=self.deadline)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # Listed but unknown to Temporal: an ended subscription whose history is gone.
            if view.status == Status.CANCELED:
                raise lifecycle.ended_refusal(request) from err
            raise not_found("subscription", subscription_id) from err
        return SubscriptionResource.from_state(state, now)


Updates = Annotated[_Updates, Depends()]


@router.post("/{subscription_id}/cancel", response_model=SubscriptionResource,
             responses=problem_responses(401, 403, 404, 409, 422, 503, 504),
             summary="Cancel a subscription")
async def cancel_subscription(subscription_id: SubscriptionId, body: CancelBody,
                              principal: BillingManagerDep, updates: Updates, now: NowDep,
                              idempotency_key: IdempotencyKey = None) -> SubscriptionResource:
    """`immediately` ends it now (no further charges, optional refund, D6); `at_period_end`
    keeps access until the paid-through date and the renewal line becomes "Cancelling on"
    the same date (D2); `at_date` ends it at `cancel_at`. Owners and billing admins only."""
    if body.mode == "at_date" and body.cancel_at is None:
        raise invalid("cancel_at", "cancel_at_required",
                      "cancel_at is required when mode is at_date")
    request = Cancel(mode=body.mode, cancel_at=body.cancel_at, refund=body.refund,
                     feedback=body.customer_reason, comment=body.comment,
                     requested_by=principal.actor)
    return await updates.send(principal, subscription_id, request, "cancel",
                              idempotency_key, now)


@router.post("/{subscription_id}/reactivate", response_model=SubscriptionResource,
             responses=problem_responses(401, 403, 404, 409, 422, 503, 504),
             summary="Remove a scheduled cancellation")
async def reactivate_subscription(subscription_id: SubscriptionId,
                                  principal: BillingManagerDep, updates: Updates,
                                  now: NowDep, idempotency_key: IdempotencyKey = None
                                  ) -> SubscriptionResource:
    """Before the cancellation takes effect: back to active, same renewal date, nothing
    charged now (D3). After it took effect: 409, create a new subscription (D4)."""
    return await updates.send(principal, subscription_id,
                              Reactivate(requested_by=principal.actor), "reactivate",
                              idempotency_key, now)


@router.post("/{subscription_id}/postpone", response_model=SubscriptionResource,
             responses=problem_responses(401, 403, 404, 409, 422, 503, 504),
             summary="Move a scheduled cancellation")
async def postpone_cancellation(subscription_id: SubscriptionId, body: PostponeBody,
                                principal: BillingManagerDep, updates: Updates,
                                now: NowDep, idempotency_key: IdempotencyKey = None
                                ) -> SubscriptionResource:
    """Change the term end (D5). Time past the paid-through date is not charged."""
    return await updates.send(principal, subscription_id,
                              Postpone(cancel_at=body.cancel_at, requested_by=principal.actor),
                              "postpone", idempotency_key, now)


@router.post("/{subscription_id}/pause", response_model=SubscriptionResource,
             responses=problem_responses(401, 403, 404, 409, 422, 503, 504),
             summary="Pause a subscription")
async def pause_subscription(subscription_id: SubscriptionId, body: PauseBody,
                             principal: BillingManagerDep, updates: Updates, now: NowDep,
                             idempotency_key: IdempotencyKey = None) -> SubscriptionResource:
    """D12: no renewals, no charges and no access while paused; purchased credits are
    locked. `now` pauses at once, `at_period_end` at the paid-through date; `resume_at`
    resumes automatically on the original anchor. Owners and billing admins only."""
    request = Pause(mode=body.mode, resume_at=body.resume_at, requested_by=principal.actor)
    return await updates.send(principal, subscription_id, request, "pause",
                              idempotency_key, now)


@router.post("/{subscription_id}/resume", response_model=SubscriptionResource,
             responses=problem_responses(401, 403, 404, 409, 422, 503, 504),
             summary="Resume a paused subscription")
async def resume_subscription(subscription_id: SubscriptionId, principal: BillingManagerDep,
                              updates: Updates, now: NowDep,
                              body: ResumeBody | None = None,
                              idempotency_key: IdempotencyKey = None) -> SubscriptionResource:
    """Ends a pause (or removes a scheduled one). `keep`: same billing anchor, nothing
    charged while the last paid period lasts, else the current anchor period is charged now;
    `reset`: a new period starts now and is charged. Owners and billing admins only."""
    anchor = body.anchor if body is not None else "keep"
    return await updates.send(principal, subscription_id,
                              Resume(anchor=anchor, requested_by=principal.actor), "resume",
                              idempotency_key, now)


def _catalog_plan(catalog: PlanCatalog, plan_id: str) -> Plan:
    plan = catalog.get(plan_id)
    if plan is None:
        known = ", ".join(p.id for p in catalog.plans)
        raise invalid("plan", "unknown_plan", f"no such plan: {plan_id}; choose one of {known}")
    return plan


@router.post("/{subscription_id}/change_plan", response_model=SubscriptionResource,
             responses=problem_responses(401, 402, 403, 404, 409, 422, 503, 504),
             summary="Change the plan: an upgrade now (prorated), anything else at renewal")
async def change_plan(subscription_id: SubscriptionId, body: ChangePlanBody,
                      principal: BillingManagerDep, updates: Updates, catalog: CatalogDep,
                      now: NowDep, idempotency_key: IdempotencyKey = None
                      ) -> SubscriptionResource:
    """An upgrade (same term, higher price; rule version 4) takes effect now: the prorated
    difference is charged at once and the extra credits for the rest of the period granted
    (D15); a declined charge answers 402 `payment_declined` and the plan stays. Any other
    change charges nothing now: the next renewal charges the new plan's price and grants its
    credits (`pending_plan` shows it until then). A `non_renewing` subscription switched to a
    plan with a different term renews again (D11); a same-term change is refused until it is
    reactivated. The current plan removes a pending change; a plan in another currency is
    refused (`currency_mismatch`). `GET .../change_plan/preview` shows the amounts first.
    Owners and billing admins only."""
    plan = _catalog_plan(catalog, body.plan)
    return await updates.send(principal, subscription_id,
                              ChangePlan(plan=plan, proration_date=body.proration_date,
                                         requested_by=principal.actor), "change_plan",
                              idempotency_key, now)


@router.get("/{subscription_id}/change_plan/preview", response_model=PlanChangeQuote,
            responses=problem_responses(401, 404, 409, 422, 503, 504),
            summary="What a plan change would charge, and when")
async def change_plan_preview(
    subscription_id: SubscriptionId, principal: ReaderDep, client: TemporalDep,
    deadline: DeadlineDep, catalog: CatalogDep, now: NowDep,
    plan: Annotated[str, Query(min_length=1, max_length=64, description="target plan id")],
) -> PlanChangeQuote:
    """Before confirming: `timing` (`now` for an upgrade, else `period_end`), `amount_due`
    now and `credits_granted` (both prorated to the second over the current period), and
    from `next_renewal_at` the new plan's price. Refused with the same problem the change
    would get. Send `at` back as `proration_date` and the charge equals `amount_due`."""
    target = _catalog_plan(catalog, plan)
    state = await visible_state(client, principal, subscription_id, deadline)
    return lifecycle.preview_change(state, target, now)


@router.post("/{subscription_id}/accept_retention_offer", response_model=SubscriptionResource,
             responses=problem_responses(401, 403, 404, 409, 422, 503, 504),
             summary="Keep the subscription at a discount instead of cancelling")
async def accept_retention_offer(subscription_id: SubscriptionId, principal: BillingManagerDep,
                                 updates: Updates, now: NowDep,
                                 idempotency_key: IdempotencyKey = None
                                 ) -> SubscriptionResource:
    """D14: the offer shown by the cancellation preview. A scheduled cancellation is removed;
    the next periods are charged at the reduced price (`discount` shows what is left); nothing
    is charged now. Once per subscription. Owners and billing admins only."""
    return await updates.send(principal, subscription_id,
                              AcceptRetentionOffer(requested_by=principal.actor),
                              "accept_retention_offer", idempotency_key, now)


@router.get("/{subscription_id}/cancellation_preview", response_model=CancellationPreview,
            responses=problem_responses(401, 404, 422, 503, 504),
            summary="What a cancellation would affect")
async def cancellation_preview(subscription_id: SubscriptionId, principal: ReaderDep,
                               client: TemporalDep, deadline: DeadlineDep, ledger: LedgerDep,
                               payments: PaymentsDep, now: NowDep) -> CancellationPreview:
    """D23, before the customer confirms: the exact end date at period end, access until,
    credits forfeited or locked, outstanding usage and open charges."""
    state = await visible_state(client, principal, subscription_id, deadline)
    return await run_in_threadpool(build_preview, state, now, ledger, payments)


@router.get("/{subscription_id}/events", response_model=EventList,
            responses=problem_responses(401, 404, 422),
            summary="The subscription's events (D8)")
async def list_subscription_events(
    subscription_id: SubscriptionId, principal: ReaderDep, engine: EngineDep,
    client: TemporalDep, deadline: DeadlineDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    starting_after: Annotated[str | None, Query(max_length=128, description=(
        "The last event id of the previous page."))] = None,
) -> EventList:
    view = await run_in_threadpool(eventlog.get_view, engine, subscription_id)
    if view is None:  # started outside the API and its first task has not run yet
        await visible_state(client, principal, subscription_id, deadline)
    else:
        visible(principal, "subscription", subscription_id, view)
    after = 0
    if starting_after is not None:
        prefix = f"evt_{subscription_id}_"
        if not starting_after.startswith(prefix) or not starting_after[len(prefix):].isdigit():
            raise invalid("starting_after", "not_an_event_of_this_subscription",
                          f"starting_after must be an event id of {subscription_id}")
        after = int(starting_after[len(prefix):])
    events = await run_in_threadpool(eventlog.list_events, engine, subscription_id,
                                     limit + 1, after)
    return EventList(has_more=len(events) > limit, data=[
        EventResource(id=e.id, type=e.type, created=e.created,
                      request=Requester(kind=e.request.kind, id=e.request.id)
                      if e.request else None,
                      data={"object": e.data, "previous_attributes": e.previous_attributes})
        for e in events[:limit]])
