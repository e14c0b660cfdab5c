"""The local record of a Stripe customer's default payment method, as webhooks see it.

Webhooks name Stripe's customer id (``cus_...`` at Stripe), not ours: ``by_stripe_id`` maps it
back. ``adopt_default`` is a compare-and-set, so when two deliveries race (or the API changed
the same method a moment before), exactly one sees the change and retries the payment.
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from payments.models import StripeCustomer
from store.engine import session_scope
from store.types import utcnow


def by_stripe_id(engine: Engine, stripe_customer_id: str) -> StripeCustomer | None:
    with Session(engine) as session:
        return session.exec(select(StripeCustomer).where(
            StripeCustomer.stripe_customer_id == stripe_customer_id)).first()


def adopt_default(engine: Engine, customer_id: str, payment_method: str) -> bool:
    """Record ``payment_method`` as the default; True only if this call changed it."""
    column = StripeCustomer.default_payment_method
    with session_scope(engine) as session:
        result = session.exec(
            update(StripeCustomer)
            .where(StripeCustomer.customer_id == customer_id,
                   or_(column.is_(None), column != payment_method))
            .values(default_payment_method=payment_method, updated_at=utcnow()))
        return result.rowcount == 1


def restore_default(engine: Engine, customer_id: str, adopted: str, previous: str | None) -> None:
    """Undo ``adopt_default`` after the retry could not be delivered, unless something newer
    changed the default since (so Stripe's redelivery sees the change again)."""
    with session_scope(engine) as session:
        session.exec(update(StripeCustomer)
                     .where(StripeCustomer.customer_id == customer_id,
                            StripeCustomer.default_payment_method == adopted)
                     .values(default_payment_method=previous, updated_at=utcnow()))
