"""Client-side operations on subscription workflows, shared by the API, the CLI and tests.

Updates answer with the new state or raise RequestRefused carrying the rule that refused the
request, so every caller reports refusals the same way.

``timeout`` bounds a whole operation, every RPC and the SDK's own re-polls included, and ends
it with DeadlineExceeded: the API passes its deadline so a stuck workflow or server never
hangs a request. The CLI and tests pass none and wait as long as it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.errors import PaymentDeclined, RequestInvalid, RequestRefused
from domain import lifecycle
from domain.lifecycle import NewSubscription
from domain.model import BillingPolicy, Event, RetentionOffer, SubscriptionState
from domain.requests import Request
from workflows import contract
from workflows.codec import customer_index
from workflows.subscription import SubscriptionWorkflow
from workflows.types import SubscriptionInput



class DeadlineExceeded(Exception):
    """The operation did not finish within its deadline (no worker polling, a stuck workflow,
    a slow server). Its outcome is unknown: an update may still apply, so retry it with the
    same update id."""


@asynccontextmanager
async def _within(timeout: timedelta | None) -> AsyncIterator[None]:
    if timeout is None:
        yield
        return
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            yield
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise DeadlineExceeded(f"no answer within {timeout.total_seconds():g} s") from err
    except RPCError as err:  # an RPC's own deadline: the SDK reports it as CANCELLED
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise DeadlineExceeded(f"no answer within {timeout.total_seconds():g} s") from err
        raise


def policy_from_settings(settings: Settings) -> BillingPolicy:
    d, r = settings.dunning, settings.retention
    offer = RetentionOffer(percent_off=r.percent_off, periods=r.periods) if r.percent_off \
        else None
    return BillingPolicy(retry_delays=tuple(d.retry_delays), grace_period=d.grace_period,
                         final_action=d.final_action, retention_offer=offer,
                         call_alarm_after=d.call_alarm_after)


def _input(client: Client, new: NewSubscription) -> SubscriptionInput:
    return SubscriptionInput(new=new, customer_index=customer_index(client, new.customer_id))


async def start(client: Client, new: NewSubscription, task_queue: str, *,
                timeout: timedelta | None = None) -> WorkflowHandle:
    """Start the workflow; a subscription id is never reused, even after it ended (D4)."""
    async with _within(timeout):
        return await client.start_workflow(
            SubscriptionWorkflow.run,
            _input(client, new),
            id=contract.workflow_id(new.id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            rpc_timeout=timeout,
        )


async def start_settled(client: Client, new: NewSubscription, task_queue: str, *,
                        timeout: timedelta | None = None) -> SubscriptionState:
    """Start the workflow and answer its state once settled (the first charge has its outcome,
    the read model is written), in one call: update-with-start of the ``settled`` update.

    A workflow already running under this id (a retried create) just answers its own state;
    one that has ended raises WorkflowAlreadyStartedError, as ``start`` does (ids are never
    reused, D4)."""
    operation = WithStartWorkflowOperation(
        SubscriptionWorkflow.run,
        _input(client, new),
        id=contract.workflow_id(new.id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    async with _within(timeout):
        try:
            return await client.execute_update_with_start_workflow(
                contract.UPDATE_SETTLED, start_workflow_operation=operation,
                result_type=SubscriptionState, rpc_timeout=timeout)
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            # The dev server raises WorkflowAlreadyStartedError itself; the time-skipping
            # test server answers a bare ALREADY_EXISTS.
            raise WorkflowAlreadyStartedError(operation.id, contract.WORKFLOW_TYPE) from err
        finally:
            # The SDK also hands the start's outcome to a future nobody awaits here; read it,
            # or asyncio logs a failed start as "exception was never retrieved". It is settled
            # once the call above returned; after a deadline it may not be: stop waiting.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(operation.workflow_handle(), timeout=0.01)


async def settled(client: Client, subscription_id: str, *,
                  timeout: timedelta | None = None) -> SubscriptionState:
    """The state once nothing is in flight (e.g. the charge a request caused has its outcome);
    for an ended subscription, its final state."""
    h = handle(client, subscription_id)
    async with _within(timeout):
        try:
            return await h.execute_update(contract.UPDATE_SETTLED,
                                          result_type=SubscriptionState, rpc_timeout=timeout)
        except RPCError:
            if await closed(client, subscription_id, timeout):
                return await h.result(rpc_timeout=timeout)
            raise


def handle(client: Client, subscription_id: str) -> WorkflowHandle:
    return client.get_workflow_handle_for(SubscriptionWorkflow.run,
                                          contract.workflow_id(subscription_id))


async def closed(client: Client, subscription_id: str,
                 timeout: timedelta | None = None) -> bool:
    """Whether the subscription's latest run has closed. Uses the service call: the
    time-skipping test server returns datetime search attributes that ``describe()`` cannot
    decode."""
    resp = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=contract.workflow_id(subscription_id))),
        timeout=timeout)
    return resp.workflow_execution_info.status != WorkflowExecutionStatus.RUNNING.value


async def get_state(client: Client, subscription_id: str, *,
                    timeout: timedelta | None = None) -> SubscriptionState:
    """The live state; for an ended subscription, the final state the workflow returned.
    A workflow whose first task has not run yet answers once it has (the server holds the
    query for the worker)."""
    h = handle(client, subscription_id)
    async with _within(timeout):
        if await closed(client, subscription_id, timeout):
            return await h.result(rpc_timeout=timeout)
        return await h.query(contract.QUERY_STATE, result_type=SubscriptionState,
                             rpc_timeout=timeout)


async def get_events(client: Client, subscription_id: str) -> list[Event]:
    return await handle(client, subscription_id).query(contract.QUERY_EVENTS,
                                                       result_type=list[Event])


async def send(client: Client, subscription_id: str, request: Request,
               update_id: str | None = None, *,
               timeout: timedelta | None = None) -> SubscriptionState:
    """Apply a request through a validated update and return the new state.

    ``update_id`` makes a retried HTTP call harmless: Temporal answers a repeated update id with
    the first outcome instead of applying it twice."""
    h = handle(client, subscription_id)
    async with _within(timeout):
        try:
            return await h.execute_update(request.kind, request, id=update_id,
                                          result_type=SubscriptionState, rpc_timeout=timeout)
        except WorkflowUpdateFailedError as err:
            raise refusal_from(err.cause) from None
        except RPCError:
            if await closed(client, subscription_id, timeout):  # ended (D4)
                raise lifecycle.ended_refusal(request) from None
            raise


async def signal(client: Client, subscription_id: str, request: Request, *,
                 timeout: timedelta | None = None) -> None:
    """Fire-and-forget: the workflow judges the request in turn and records a refusal in
    ``rejected_signals``. An ended subscription refuses at once, as ``send`` does (D4)."""
    h = handle(client, subscription_id)
    async with _within(timeout):
        try:
            await h.signal(request.kind, request, rpc_timeout=timeout)
        except RPCError:
            if await closed(client, subscription_id, timeout):
                raise lifecycle.ended_refusal(request) from None
            raise


def refusal_from(cause: BaseException | None) -> RequestRefused:
    """Turn the workflow's ApplicationError back into the core's refusal."""
    if isinstance(cause, ApplicationError) and cause.details:
        body = cause.details[0]
        if isinstance(body, dict) and "code" in body:
            if body.get("http_status") == 402:
                return PaymentDeclined(body["code"], body["message"], body.get("field"),
                                       body.get("decline_code"))
            kind = RequestInvalid if body.get("http_status") == 422 else RequestRefused
            return kind(body["code"], body["message"], body.get("field"))
    return RequestRefused("update_failed", str(cause))

