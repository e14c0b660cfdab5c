"""CreditPurchaseWorkflow: a top-up (D16) or an auto-recharge (D19) as one short workflow.

Before it, the API charged in the request thread and then wrote the ledger: a crash between the
two left a paid charge without credits. Here the charge and the grant are two activities under
the purchase's idempotency key, so once the charge succeeded the grant is retried until the
ledger has it, on whichever worker survives; the API only starts the workflow and reads its
result (workflows.purchase_ops). The id is derived from the key, so a duplicate request joins
the first purchase, and the input (amount, time, expiry) is fixed by the first request.

Every end is a result, never a failed workflow task: a decline ends ``declined``; a
non-retryable provider error (bad key, invalid request, key reused) ends ``failed`` at the
charge; a grant the ledger refuses ends ``failed`` at the credit (the reconciliation job
reports that charge). Anything retryable (Stripe down, the database gone) is retried.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.types import ChargeResult, CreditPurchase
    from ledger.results import EntryResult
    from workflows.stripe_calls import HEARTBEAT_TIMEOUT, STRIPE_ACTIVITY_TIMEOUT
    from workflows.types import PurchaseResult

WORKFLOW_TYPE = "CreditPurchase"
GRANT_TIMEOUT = timedelta(seconds=30)
# Infrastructure faults are retried until they pass; the shared key makes that safe.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1))


def workflow_id(idempotency_key: str) -> str:
    return f"credit-purchase-{idempotency_key}"


@workflow.defn(name=WORKFLOW_TYPE)
class CreditPurchaseWorkflow:
    @workflow.run
    async def run(self, purchase: CreditPurchase) -> PurchaseResult:
        key, credits = purchase.idempotency_key, purchase.credits
        try:
            charge = await workflow.execute_activity(
                "charge", purchase.charge_request(), result_type=ChargeResult,
                start_to_close_timeout=STRIPE_ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT, retry_policy=RETRY)
        except ActivityError as err:
            return _failed(purchase, "charge", err, None)
        if charge.status != "succeeded":
            return PurchaseResult(status="declined", idempotency_key=key, credits=credits,
                                  payment_intent_id=charge.payment_intent_id,
                                  decline_code=charge.decline_code, message=charge.message)
        try:
            entry = await workflow.execute_activity(
                "purchase_credits", purchase, result_type=EntryResult,
                start_to_close_timeout=GRANT_TIMEOUT, retry_policy=RETRY)
        except ActivityError as err:
            return _failed(purchase, "credit", err, charge.payment_intent_id)
        return PurchaseResult(status="credited", idempotency_key=key, credits=credits,
                              payment_intent_id=charge.payment_intent_id, entry=entry)


def _failed(purchase: CreditPurchase, stage: str, err: ActivityError,
            payment_intent_id: str | None) -> PurchaseResult:
    """Only non-retryable failures get here: the error's class and the provider's status are
    kept for the caller, its text stays in the history for operators."""
    cause = err.cause
    error_type = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
    details = cause.details[0] if isinstance(cause, ApplicationError) and cause.details else {}
    http_status = details.get("http_status") if isinstance(details, dict) else None
    workflow.logger.warning("credit purchase failed at %s: %s", stage, error_type, extra={
        "customer_id": purchase.customer_id, "idempotency_key": purchase.idempotency_key,
        "purpose": purchase.purpose, "payment_intent_id": payment_intent_id})
    return PurchaseResult(status="failed", idempotency_key=purchase.idempotency_key,
                          credits=purchase.credits, payment_intent_id=payment_intent_id,
                          stage=stage, error_type=error_type, http_status=http_status)
