"""The local record of a Stripe customer's default payment method, as webhooks see it.

Webhooks name Stripe's customer id (``cus_...`` at Stripe), not ours: ``by_stripe_id`` maps it
back. ``adopt_default`` is a compare-and-set, so when two deliveries race (or the API changed
the same method a moment before), exactly one sees the change and retries the payment. The
event that adopted a method records it in the same transaction (``adopted_by``): if its handler
dies before the retry is delivered, the delivery that takes the event over still owes it.
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from payments.models import StripeCustomer
from store.engine import session_scope
from store.types import utcnow
from webhooks.models import StripeWebhookEvent


def by_stripe_id(engine: Engine, stripe_customer_id: str) -> StripeCustomer | None:
    with Session(engine) as session:
        return session.exec(select(StripeCustomer).where(
            StripeCustomer.stripe_customer_id == stripe_customer_id)).first()


def adopt_default(engine: Engine, customer_id: str, payment_method: str, event_id: str) -> bool:
    """Record ``payment_method`` as the default; True only if this call changed it (and then
    event ``event_id`` owes the retry of the customer's payments in dunning)."""
    column = StripeCustomer.default_payment_method
    with session_scope(engine) as session:
        result = session.exec(
            update(StripeCustomer)
            .where(StripeCustomer.customer_id == customer_id,
                   or_(column.is_(None), column != payment_method))
            .values(default_payment_method=payment_method, updated_at=utcnow()))
        if result.rowcount != 1:
            return False
        session.exec(update(StripeWebhookEvent).where(StripeWebhookEvent.id == event_id)
                     .values(adopted_payment_method=payment_method))
        return True


def adopted_by(engine: Engine, event_id: str) -> str | None:
    """The payment method event ``event_id`` made the default, if any: until the event is
    finished, the retry of that change is owed (a takeover re-does it)."""
    with Session(engine) as session:
        row = session.get(StripeWebhookEvent, event_id)
        return row.adopted_payment_method if row is not None else None
