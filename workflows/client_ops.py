"""Client-side operations on subscription workflows, shared by the API, the CLI and tests.

Updates answer with the new state or raise RequestRefused carrying the rule that refused the
request, so every caller reports refusals the same way.
"""

from __future__ import annotations

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from config.settings import Settings
from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import ENDED_MESSAGE, NewSubscription
from domain.model import BillingPolicy, Event, RetentionOffer, SubscriptionState
from domain.requests import (
    AcceptRetentionOffer,
    Cancel,
    ChangePlan,
    Pause,
    PaymentMethodUpdated,
    Postpone,
    Reactivate,
    Request,
    Resume,
    Retry,
)
from workflows import contract
from workflows.subscription import SubscriptionWorkflow
from workflows.types import SubscriptionInput

_UPDATES = {
    Cancel: contract.UPDATE_CANCEL,
    Reactivate: contract.UPDATE_REACTIVATE,
    Postpone: contract.UPDATE_POSTPONE,
    PaymentMethodUpdated: contract.UPDATE_PAYMENT_METHOD,
    Pause: contract.UPDATE_PAUSE,
    Resume: contract.UPDATE_RESUME,
    ChangePlan: contract.UPDATE_CHANGE_PLAN,
    AcceptRetentionOffer: contract.UPDATE_ACCEPT_RETENTION_OFFER,
    Retry: contract.UPDATE_RETRY,
}
_SIGNALS = {
    Cancel: contract.SIGNAL_CANCEL,
    Reactivate: contract.SIGNAL_REACTIVATE,
    Postpone: contract.SIGNAL_POSTPONE,
    PaymentMethodUpdated: contract.SIGNAL_PAYMENT_METHOD_UPDATED,
    Pause: contract.SIGNAL_PAUSE,
    Resume: contract.SIGNAL_RESUME,
    ChangePlan: contract.SIGNAL_CHANGE_PLAN,
    AcceptRetentionOffer: contract.SIGNAL_ACCEPT_RETENTION_OFFER,
    Retry: contract.SIGNAL_RETRY,
}


def policy_from_settings(settings: Settings) -> BillingPolicy:
    d, r = settings.dunning, settings.retention
    offer = RetentionOffer(percent_off=r.percent_off, periods=r.periods) if r.percent_off \
        else None
    return BillingPolicy(retry_delays=tuple(d.retry_delays), grace_period=d.grace_period,
                         final_action=d.final_action, retention_offer=offer,
                         call_alarm_after=d.call_alarm_after)


async def start(client: Client, new: NewSubscription, task_queue: str) -> WorkflowHandle:
    """Start the workflow; a subscription id is never reused, even after it ended (D4)."""
    return await client.start_workflow(
        SubscriptionWorkflow.run,
        SubscriptionInput(new=new),
        id=contract.workflow_id(new.id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


def handle(client: Client, subscription_id: str) -> WorkflowHandle:
    return client.get_workflow_handle_for(SubscriptionWorkflow.run,
                                          contract.workflow_id(subscription_id))


async def _closed(h: WorkflowHandle) -> bool:
    """Whether the latest run has closed. Uses the raw call: the time-skipping test server
    returns datetime search attributes that ``describe()`` cannot decode."""
    resp = await h._client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=h._client.namespace,
                                         execution=WorkflowExecution(workflow_id=h.id)))
    return resp.workflow_execution_info.status != WorkflowExecutionStatus.RUNNING.value


async def get_state(client: Client, subscription_id: str) -> SubscriptionState:
    """The live state; for an ended subscription, the final state the workflow returned."""
    h = handle(client, subscription_id)
    if await _closed(h):
        return await h.result()
    return await h.query(contract.QUERY_STATE, result_type=SubscriptionState)


async def get_events(client: Client, subscription_id: str) -> list[Event]:
    return await handle(client, subscription_id).query(contract.QUERY_EVENTS,
                                                       result_type=list[Event])


async def send(client: Client, subscription_id: str, request: Request,
               update_id: str | None = None) -> SubscriptionState:
    """Apply a request through a validated update and return the new state.

    ``update_id`` makes a retried HTTP call harmless: Temporal answers a repeated update id with
    the first outcome instead of applying it twice."""
    try:
        return await handle(client, subscription_id).execute_update(
            _UPDATES[type(request)], request, id=update_id, result_type=SubscriptionState)
    except WorkflowUpdateFailedError as err:
        raise refusal_from(err.cause) from None
    except RPCError:
        h = handle(client, subscription_id)
        if await _closed(h):  # the workflow completed: the subscription has ended (D4)
            message = (ENDED_MESSAGE if isinstance(request, Reactivate)
                       else "the subscription has already ended")
            raise RequestRefused("subscription_ended", message) from None
        raise


async def signal(client: Client, subscription_id: str, request: Request) -> None:
    """Fire-and-forget: the workflow judges the request in turn and records a refusal in
    ``rejected_signals``. An ended subscription refuses at once, as ``send`` does (D4)."""
    try:
        await handle(client, subscription_id).signal(_SIGNALS[type(request)], request)
    except RPCError:
        if await _closed(handle(client, subscription_id)):
            message = (ENDED_MESSAGE if isinstance(request, Reactivate)
                       else "the subscription has already ended")
            raise RequestRefused("subscription_ended", message) from None
        raise


def refusal_from(cause: BaseException | None) -> RequestRefused:
    """Turn the workflow's ApplicationError back into the core's refusal."""
    if isinstance(cause, ApplicationError) and cause.details:
        body = cause.details[0]
        if isinstance(body, dict) and "code" in body:
            kind = RequestInvalid if body.get("http_status") == 422 else RequestRefused
            return kind(body["code"], body["message"], body.get("field"))
    return RequestRefused("update_failed", str(cause))


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and "not found" in str(err).lower()
