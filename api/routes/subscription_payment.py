"""POST /v1/subscriptions/{id}/payment_method: change the card a subscription is paid with.

Renewals charge the customer's default payment method, so this sets that default (the same
as ``POST /v1/customers/{id}/payment_method``) and retries every payment of the customer that
is in dunning (D9), through the same code path. Answers with the subscription once the retry
has an outcome, so a caller sees ``active`` again when the new card paid.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import billing
from api.deps import (BillingManagerDep, DeadlineDep, EngineDep, NowDep, PaymentsDep,
                      SettingsDep, TemporalDep)
from api.dunning import retry_dunning
from api.params import SubscriptionId
from api.problems import ApiProblem, invalid, problem_responses
from api.schemas.accounts import UpdatePaymentMethod
from api.schemas.subscriptions import SubscriptionResource
from api.scope import visible_customer, visible_state
from workflows import client_ops

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


class SubscriptionPaymentMethodResult(BaseModel):
    subscription: SubscriptionResource
    default_payment_method: str | None = Field(examples=["pm_1Q2w3E4r"])
    retried_subscriptions: list[str] = Field(description=(
        "The customer's subscriptions in dunning whose payment was retried at once (D9)."),
        examples=[["sub_4fT9kQ2mZx8LpR1a"]])


@router.post("/{subscription_id}/payment_method", response_model=SubscriptionPaymentMethodResult,
             responses=problem_responses(401, 404, 409, 422, 503, 504),
             summary="Change the payment method of a subscription")
async def update_subscription_payment_method(
        subscription_id: SubscriptionId, body: UpdatePaymentMethod,
        principal: BillingManagerDep, engine: EngineDep, payments: PaymentsDep,
        client: TemporalDep, deadline: DeadlineDep, settings: SettingsDep, now: NowDep
        ) -> SubscriptionPaymentMethodResult:
    """Give exactly one of `card_number` (test mode) and `payment_method_id`. A failed
    payment is retried at once with the new method (D9). An ended subscription is never
    charged again: 409."""
    if (body.card_number is None) == (body.payment_method_id is None):
        raise invalid("card_number", "exactly_one_required",
                      "give exactly one of card_number and payment_method_id")
    billing.check_card_number(body.card_number, "card_number", settings.production)
    state = await visible_state(client, principal, subscription_id, deadline)
    if state.ended:
        raise ApiProblem(409, "request-refused", "the subscription has ended and is never "
                         "charged again; change the customer's payment method instead",
                         code="subscription_ended")
    customer = await visible_customer(engine, principal, state.customer_id)
    field = "card_number" if body.card_number else "payment_method_id"
    pm = await run_in_threadpool(billing.set_default_payment_method, payments, customer.id,
                                 body.card_number or body.payment_method_id, field)
    retried = await retry_dunning(client, engine, customer, pm, principal.actor,
                                  timeout=deadline)
    current = await client_ops.settled(client, subscription_id, timeout=deadline)
    return SubscriptionPaymentMethodResult(
        subscription=SubscriptionResource.from_state(current, now),
        default_payment_method=pm, retried_subscriptions=retried)
