"""Our customer records. The Stripe side (customer, payment methods) is kept by ``payments``;
this row is what scopes a customer to one organization."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.ids import new_id
from accounts.models import Customer
from store.engine import session_scope


def new_customer_id() -> str:
    return new_id("cus")


def create_customer(engine: Engine, organization_id: str, email: str, name: str,
                    customer_id: str | None = None) -> Customer:
    """``customer_id`` lets the caller create the Stripe side first under the final id."""
    with session_scope(engine) as session:
        customer = Customer(id=customer_id or new_customer_id(),
                            organization_id=organization_id, email=email, name=name)
        session.add(customer)
    return customer


def get_customer(engine: Engine, customer_id: str) -> Customer | None:
    with Session(engine) as session:
        return session.get(Customer, customer_id)


def customer_ids(engine: Engine, organization_id: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Customer.id)
                                 .where(Customer.organization_id == organization_id)).all())
