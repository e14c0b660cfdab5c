"""Client-side operations on credit purchases (workflows.credit_purchase), for the API and tests.

A request starts the purchase's workflow or joins it: a running one is used as it is (the id
conflict policy), a completed one is not started again (its result stands: nothing is charged
twice), a failed or terminated one may be started afresh (its charge and grant are idempotent
by key, so a new run finishes whatever the old one did).
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (SearchAttributePair, TypedSearchAttributes,
                               WorkflowIDConflictPolicy, WorkflowIDReusePolicy)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.types import CreditPurchase
from workflows import contract
from workflows.codec import customer_index
from workflows.credit_purchase import CreditPurchaseWorkflow, workflow_id
from workflows.types import PurchaseResult


async def start(client: Client, purchase: CreditPurchase, task_queue: str, *,
                again: bool = False) -> bool:
    """Start the purchase unless it runs or ran. True when a run is going now (this call's or
    one it joined); False when an earlier run completed. ``again`` starts a new run even after
    a completed one (to retry a charge that failed for a reason an operator has fixed)."""
    indexed = customer_index(client, purchase.customer_id) or purchase.customer_id
    try:
        await client.start_workflow(
            CreditPurchaseWorkflow.run, purchase, id=workflow_id(purchase.idempotency_key),
            task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if again
                             else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY),
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(contract.CUSTOMER, indexed)]))
    except WorkflowAlreadyStartedError:
        return False
    return True


def handle(client: Client, idempotency_key: str) -> WorkflowHandle:
    """The latest run (a plain handle: waiting on it never lets a test server skip time)."""
    return client.get_workflow_handle_for(CreditPurchaseWorkflow.run,
                                          workflow_id(idempotency_key))


async def buy(client: Client, purchase: CreditPurchase, task_queue: str) -> PurchaseResult:
    """Start or join the purchase and wait for its result (callers bound the wait). A charge
    that failed in a completed earlier run is tried once more by a new run."""
    running = await start(client, purchase, task_queue)
    result = await handle(client, purchase.idempotency_key).result()
    if not running and result.status == "failed" and result.stage == "charge":
        await start(client, purchase, task_queue, again=True)
        result = await handle(client, purchase.idempotency_key).result()
    return result
