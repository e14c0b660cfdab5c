"""Tenancy: every id a caller names is resolved here, inside the caller's organization.

Another organization's customer or subscription answers exactly like an unknown id (404), so
ids leak nothing across tenants. Operator keys see every organization.

Who may act on a subscription comes from the read model (one indexed row that carries the
organization), so a change costs no workflow query before its update; a read that answers
with the live state asks the workflow once, within the API's deadline, never in a loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from accounts.customers import get_customer
from accounts.keys import Principal
from accounts.models import Customer, Organization
from accounts.organizations import get_organization
from api.problems import invalid, not_found
from domain.model import SubscriptionState
from eventlog import store as eventlog
from eventlog.models import SubscriptionView
from notifications.endpoints import get_endpoint
from notifications.models import WebhookEndpoint
from workflows import client_ops


T = TypeVar("T")


def visible(principal: Principal, kind: str, resource_id: str, found: T | None,
            organization_of: Callable[[T], str | None] = lambda row: row.organization_id,
            ) -> T:
    """``found`` if the caller may see it; else the same 404 as for an unknown id."""
    if found is None or not principal.can_see(organization_of(found)):
        raise not_found(kind, resource_id)
    return found


async def visible_customer(engine: Engine, principal: Principal, customer_id: str) -> Customer:
    customer = await run_in_threadpool(get_customer, engine, customer_id)
    return visible(principal, "customer", customer_id, customer)


async def visible_endpoint(engine: Engine, principal: Principal,
                           endpoint_id: str) -> WebhookEndpoint:
    endpoint = await run_in_threadpool(get_endpoint, engine, endpoint_id)
    return visible(principal, "webhook endpoint", endpoint_id, endpoint)


def visible_organization(engine: Engine, principal: Principal,
                         organization_id: str) -> Organization:
    org = get_organization(engine, organization_id)
    return visible(principal, "organization", organization_id, org, lambda o: o.id)


async def organization_for(engine: Engine, principal: Principal, requested: str | None) -> str:
    """The organization a request acts in: the key's own; operators name it explicitly."""
    if principal.is_operator:
        if requested is None:
            raise invalid("organization", "organization_required",
                          "operator keys must name the organization")
        if await run_in_threadpool(get_organization, engine, requested) is None:
            raise not_found("organization", requested)
        return requested
    if requested is not None and requested != principal.organization_id:
        raise not_found("organization", requested)
    assert principal.organization_id is not None
    return principal.organization_id


async def visible_view(engine: Engine, principal: Principal,
                       subscription_id: str) -> SubscriptionView:
    """The subscription's read-model row, if the caller may see it."""
    view = await run_in_threadpool(eventlog.get_view, engine, subscription_id)
    return visible(principal, "subscription", subscription_id, view)


async def live_state(client: Client, subscription_id: str,
                     timeout: timedelta) -> SubscriptionState | None:
    """The workflow's state, or None if Temporal knows no such subscription. Past the
    deadline: DeadlineExceeded (a 504); Temporal down: RPCError (a 503)."""
    try:
        return await client_ops.get_state(client, subscription_id, timeout=timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def visible_state(client: Client, principal: Principal, subscription_id: str,
                        timeout: timedelta) -> SubscriptionState:
    state = await live_state(client, subscription_id, timeout)
    return visible(principal, "subscription", subscription_id, state)
