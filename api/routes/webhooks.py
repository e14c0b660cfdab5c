"""POST /webhooks/stripe: Stripe's events, verified, processed at least once, acted on once.

The signature is checked over the raw bytes before anything is parsed (400 when forged or
stale). The event id is then claimed in ``stripe_webhook_event`` with a lease (webhooks.store):
a delivery of an event already finished answers 200 without acting; one that meets a live lease
(another delivery is handling it) answers 409 with ``Retry-After``, so Stripe comes back later
instead of taking a 200 for done; one that meets an expired lease (its handler died) takes the
event over and handles it. A handler that fails releases the lease and answers 503, so Stripe's
retry processes the event again. Types we do not act on are acknowledged with 200.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from api import stripe_events
from api.deps import DeadlineDep, EngineDep, PaymentsDep, SettingsDep, TemporalDep
from api.problems import ApiProblem, FieldError, problem_responses
from webhooks import store
from webhooks.events import StripeEvent
from webhooks.signature import SignatureRejected, verify

router = APIRouter(tags=["webhooks"])


class WebhookReceipt(BaseModel):
    object: Literal["webhook_receipt"] = "webhook_receipt"
    event: str
    type: str
    duplicate: bool = False
    handled: bool
    detail: str
    retried_subscriptions: list[str] = []


_BODY = {"requestBody": {"required": True, "description": "A Stripe event, exactly as signed.",
                         "content": {"application/json": {"schema": {"type": "object"}}}}}


def _parse(payload: bytes) -> StripeEvent:
    try:
        return StripeEvent.model_validate_json(payload)
    except ValidationError as err:
        errors = [FieldError(field=".".join(str(p) for p in e["loc"]) or "body",
                             rule=e["type"], message=e["msg"]) for e in err.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise ApiProblem(422, "validation-error", f"not a Stripe event: {detail}",
                         code="invalid_event", errors=errors) from None


@router.post("/webhooks/stripe", response_model=WebhookReceipt, openapi_extra=_BODY,
             responses=problem_responses(400, 409, 422, 503), summary="Receive a Stripe event")
async def stripe_webhook(request: Request, settings: SettingsDep, engine: EngineDep,
                         payments: PaymentsDep, client: TemporalDep, deadline: DeadlineDep,
                         stripe_signature: Annotated[str | None, Header(
                             alias="Stripe-Signature", max_length=2000)] = None
                         ) -> WebhookReceipt:
    """Authenticated by the `Stripe-Signature` header (the endpoint's signing secret), not by
    an API key. A payment-method change retries payments in dunning at once (D9)."""
    payload = await request.body()
    try:
        verify(payload, stripe_signature, settings.stripe.webhook_secret,
               settings.stripe.webhook_tolerance_seconds)
    except SignatureRejected as rejected:
        raise ApiProblem(400, "invalid-signature", rejected.message,
                         code=rejected.code) from None
    event = _parse(payload)
    receipt = dict(event=event.id, type=event.type)
    lease = timedelta(seconds=settings.stripe.webhook_lease_seconds)
    claim = await run_in_threadpool(lambda: store.claim(engine, event.id, event.type,
                                                        event.created_at, lease=lease))
    if claim.status == "done":
        return WebhookReceipt(**receipt, duplicate=True, handled=False,
                              detail="already received: nothing done again")
    if claim.status == "busy":
        raise ApiProblem(409, "in-progress", f"event {event.id} is being handled by another "
                         f"delivery; retry in {claim.retry_after} s", code="event_in_progress",
                         headers={"Retry-After": str(claim.retry_after)})
    try:
        outcome = await stripe_events.handle(event, engine, payments, client, deadline)
    except BaseException:
        await run_in_threadpool(store.release, engine, claim)
        raise
    await run_in_threadpool(store.finish, engine, claim, outcome.detail)
    request.state.subscription_ids = outcome.retried_subscriptions
    return WebhookReceipt(**receipt, handled=outcome.handled, detail=outcome.detail,
                          retried_subscriptions=outcome.retried_subscriptions)
