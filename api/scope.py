"""Tenancy: every id a caller names is resolved here, inside the caller's organization.

Another organization's customer or subscription answers exactly like an unknown id (404), so
ids leak nothing across tenants. Operator keys see every organization.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from accounts.customers import get_customer
from accounts.keys import Principal
from accounts.models import Customer
from accounts.organizations import get_organization
from api.problems import ApiProblem, invalid, not_found
from domain.model import SubscriptionState
from workflows import client_ops

# A workflow answers queries once its first task ran (milliseconds after the start).
_NOT_READY_RETRIES = 50
_NOT_READY_DELAY = 0.1


async def visible_customer(engine: Engine, principal: Principal, customer_id: str) -> Customer:
    customer = await run_in_threadpool(get_customer, engine, customer_id)
    if customer is None or not principal.can_see(customer.organization_id):
        raise not_found("customer", customer_id)
    return customer


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


def upstream_unavailable(err: RPCError) -> ApiProblem:
    return ApiProblem(503, "upstream-unavailable",
                      f"the workflow service did not answer: {err.message}",
                      code="temporal_unavailable")


async def live_state(client: Client, subscription_id: str) -> SubscriptionState | None:
    """The workflow's state, or None if there is no such subscription."""
    for _ in range(_NOT_READY_RETRIES):
        try:
            return await client_ops.get_state(client, subscription_id)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            if err.status not in (RPCStatusCode.FAILED_PRECONDITION,):
                raise upstream_unavailable(err) from err
        except (WorkflowQueryFailedError, TypeError, ValueError):
            pass  # just started: the first workflow task has not produced a state yet
        await asyncio.sleep(_NOT_READY_DELAY)
    raise ApiProblem(503, "upstream-unavailable", "the subscription did not answer in time; "
                     "retry", code="subscription_not_ready")


async def visible_state(client: Client, principal: Principal,
                        subscription_id: str) -> SubscriptionState:
    state = await live_state(client, subscription_id)
    if state is None or not principal.can_see(state.organization_id):
        raise not_found("subscription", subscription_id)
    return state
