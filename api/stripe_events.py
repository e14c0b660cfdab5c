"""What the API does with the Stripe events it subscribes to.

Deliveries may repeat and arrive out of order, so handlers never trust the event's snapshot of
an object: they re-read the current facts from Stripe and act only on a change to our record.
An older ``customer.updated`` arriving after a newer one therefore finds nothing to change,
and a payment is retried (D9) once per real change of the default payment method, through the
same code path as ``POST /v1/customers/{id}/payment_method``.

Acted on once even across a crash: the event that changes our record remembers it in the same
transaction, and its retry carries an update id derived from the event, so the delivery that
takes over a dead handler's event re-does the retry and Temporal applies it at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from datetime import timedelta

import stripe
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from accounts.customers import get_customer
from api.dunning import retry_dunning
from api.problems import ApiProblem
from domain.model import Actor
from payments.errors import RetryableGatewayError
from payments.gateway import StripeGateway, classify
from payments.service import PaymentService
from webhooks import customers as local_customers
from webhooks.events import StripeEvent

log = logging.getLogger("api.webhooks")


@dataclass
class Outcome:
    handled: bool
    detail: str
    retried_subscriptions: list[str] = field(default_factory=list)


class _Gone(Exception):
    """Stripe no longer knows the object (deleted): nothing to act on."""


def _stripe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except stripe.StripeError as err:
        error = classify(err)
        if isinstance(error, RetryableGatewayError):
            log.warning("Stripe unavailable: %s", error.message)  # its text stays here
            raise ApiProblem(503, "upstream-unavailable", "Stripe did not answer; the "
                             "delivery will be retried", code="payments_unavailable") from err
        raise _Gone(error.message) from err


def _id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def current_default(gateway: StripeGateway, stripe_customer_id: str,
                    attached: str | None) -> str | None:
    """The customer's default payment method at Stripe now. A method attached to a customer
    without any default becomes the default (renewals charge the default)."""
    v1 = gateway.client.v1
    customer = _stripe(lambda: v1.customers.retrieve(stripe_customer_id)).to_dict()
    if customer.get("deleted"):
        return None
    default = _id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    if default is not None or attached is None:
        return default
    method = _stripe(lambda: v1.payment_methods.retrieve(attached)).to_dict()
    if _id(method.get("customer")) != stripe_customer_id:
        return None  # detached again since: not a current fact any more
    _stripe(lambda: v1.customers.update(stripe_customer_id, {
        "invoice_settings": {"default_payment_method": attached}}))
    return attached


def retry_update_id(event_id: str, payment_method: str) -> str:
    """The workflow update id of the retry an event owes: the same on every delivery of the
    event (Temporal answers a repeat with the first outcome), another for another method."""
    return f"stripe-event:{event_id}:{payment_method}"


async def _sync_default(event: StripeEvent, engine: Engine, payments: PaymentService,
                        client: Client, stripe_customer_id: Any,
                        attached: str | None, timeout: timedelta | None) -> Outcome:
    if not isinstance(stripe_customer_id, str) or not stripe_customer_id:
        return Outcome(False, "ignored: the event names no customer")
    record = await run_in_threadpool(local_customers.by_stripe_id, engine, stripe_customer_id)
    customer = None
    if record is not None:
        customer = await run_in_threadpool(get_customer, engine, record.customer_id)
    if record is None or customer is None:
        return Outcome(False, f"ignored: {stripe_customer_id} is not one of our customers")
    try:
        default = await run_in_threadpool(current_default, payments.gateway,
                                          stripe_customer_id, attached)
    except _Gone as gone:
        return Outcome(False, f"ignored: Stripe no longer knows it ({gone})")
    if default is None:
        return Outcome(True, "unchanged: the customer has no default payment method")
    adopted = await run_in_threadpool(local_customers.adopt_default, engine, customer.id,
                                      default, event.id)
    # Not changed now, but changed by an earlier delivery of this event that died or failed
    # before its retry was surely delivered: the retry is still owed, and re-doing it under
    # the same update id acts once.
    if not adopted and await run_in_threadpool(local_customers.adopted_by, engine,
                                               event.id) != default:
        return Outcome(True, f"unchanged: {default} is already the default")
    retried = await retry_dunning(client, engine, customer, default,
                                  Actor(kind="customer", id=customer.id),
                                  update_id=retry_update_id(event.id, default),
                                  timeout=timeout)
    return Outcome(True, f"default payment method is now {default}", retried)


async def _customer_updated(event: StripeEvent, engine: Engine, payments: PaymentService,
                            client: Client, timeout: timedelta | None) -> Outcome:
    return await _sync_default(event, engine, payments, client, event.object.get("id"), None,
                               timeout)


async def _payment_method_attached(event: StripeEvent, engine: Engine,
                                   payments: PaymentService, client: Client,
                                   timeout: timedelta | None) -> Outcome:
    return await _sync_default(event, engine, payments, client,
                               _id(event.object.get("customer")), _id(event.object.get("id")),
                               timeout)


Handler = Callable[[StripeEvent, Engine, PaymentService, Client, timedelta | None],
                   Awaitable[Outcome]]
HANDLERS: dict[str, Handler] = {
    "customer.updated": _customer_updated,
    "payment_method.attached": _payment_method_attached,
}


async def handle(event: StripeEvent, engine: Engine, payments: PaymentService,
                 client: Client, timeout: timedelta | None = None) -> Outcome:
    """``timeout`` bounds each Temporal call (the API's deadline; keep it under the lease)."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Outcome(False, f"ignored: {event.type} is not an event we act on")
    return await handler(event, engine, payments, client, timeout)
