"""/v1/customers: our customer record plus its Stripe customer and default payment method.

A new payment method also tells the customer's subscriptions in dunning (past_due, incomplete,
unpaid) so they retry the failed payment at once (D9).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from accounts.customers import create_customer, new_customer_id
from accounts.models import Customer
from api import billing
from api.deps import (BillingManagerDep, DeadlineDep, EngineDep, PaymentsDep, ReaderDep,
                      SettingsDep, TemporalDep)
from api.dunning import retry_dunning
from api.params import CustomerId
from api.problems import invalid, problem_responses
from api.schemas.accounts import (
    CreateCustomer,
    CustomerResource,
    PaymentMethodResult,
    UpdatePaymentMethod,
)
from api.scope import organization_for, visible_customer

router = APIRouter(prefix="/v1/customers", tags=["customers"])


def _resource(customer: Customer, payment_method: str | None) -> CustomerResource:
    return CustomerResource(id=customer.id, email=customer.email, name=customer.name,
                            organization=customer.organization_id, created=customer.created,
                            default_payment_method=payment_method)


@router.post("", status_code=201, response_model=CustomerResource,
             responses=problem_responses(401, 404, 422),
             summary="Create a customer")
async def create_customer_(body: CreateCustomer, principal: BillingManagerDep,
                           engine: EngineDep, payments: PaymentsDep, settings: SettingsDep
                           ) -> CustomerResource:
    """Creates the customer and its Stripe customer; `payment_method` (a test card number or a
    pm_ id) becomes the default payment method for renewals."""
    billing.check_card_number(body.payment_method, "payment_method", settings.production)
    organization = await organization_for(engine, principal, body.organization)

    def create() -> CustomerResource:
        # Stripe first: if the payment method is refused, our customer never exists.
        customer_id = new_customer_id()
        pm = billing.create_stripe_customer(payments, customer_id, body.email, body.name,
                                            body.payment_method)
        customer = create_customer(engine, organization, body.email, body.name, customer_id)
        return _resource(customer, pm)

    return await run_in_threadpool(create)


@router.get("/{customer_id}", response_model=CustomerResource,
            responses=problem_responses(401, 404, 422),
            summary="Retrieve a customer")
async def get_customer_(customer_id: CustomerId, principal: ReaderDep, engine: EngineDep,
                        payments: PaymentsDep) -> CustomerResource:
    customer = await visible_customer(engine, principal, customer_id)
    pm = await run_in_threadpool(billing.default_payment_method, payments, customer.id)
    return _resource(customer, pm)


@router.post("/{customer_id}/payment_method", response_model=PaymentMethodResult,
             responses=problem_responses(401, 404, 422, 503, 504),
             summary="Set the default payment method")
async def update_payment_method(customer_id: CustomerId, body: UpdatePaymentMethod,
                                principal: BillingManagerDep, engine: EngineDep,
                                payments: PaymentsDep, client: TemporalDep,
                                deadline: DeadlineDep, settings: SettingsDep
                                ) -> PaymentMethodResult:
    """Replaces the default payment method; subscriptions whose payment failed retry it at
    once (D9)."""
    if (body.card_number is None) == (body.payment_method_id is None):
        raise invalid("card_number", "exactly_one_required",
                      "give exactly one of card_number and payment_method_id")
    billing.check_card_number(body.card_number, "card_number", settings.production)
    customer = await visible_customer(engine, principal, customer_id)
    field = "card_number" if body.card_number else "payment_method_id"
    pm = await run_in_threadpool(billing.set_default_payment_method, payments, customer.id,
                                 body.card_number or body.payment_method_id, field)
    retried = await retry_dunning(client, engine, customer, pm, principal.actor,
                                  timeout=deadline)
    return PaymentMethodResult(customer=_resource(customer, pm),
                                retried_subscriptions=retried)

