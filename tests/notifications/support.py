"""Shared helpers: an organization with a customer, and real events of the core for it."""

from __future__ import annotations

from dataclasses import dataclass

from accounts import keys
from accounts.customers import create_customer
from domain.commands import Emit
from domain.model import Event
from store.engine import get_engine
from tests.domain.helpers import Driver


@dataclass
class Tenant:
    organization_id: str
    customer_id: str
    email: str


def make_tenant(url: str, email: str = "ada@example.com") -> Tenant:
    engine = get_engine(url)
    org, _ = keys.create_organization_with_owner(engine, "Acme")
    customer = create_customer(engine, org.id, email, "Ada Lovelace")
    return Tenant(org.id, customer.id, email)


def driver_for(tenant: Tenant, now, sub_id: str = "sub_1", **kwargs) -> Driver:
    return Driver.create(now, sub_id=sub_id, customer_id=tenant.customer_id, **kwargs)


def emitted(driver: Driver, tenant: Tenant, mark: int = 0) -> list[Event]:
    """The events logged since ``mark``, tagged with the tenant's organization."""
    return [c.event.model_copy(update={"data": {**c.event.data,
                                                "organization": tenant.organization_id}})
            for c in driver.since(mark) if isinstance(c, Emit)]
