"""The floor to compare with: a plain Temporal loop (timer -> charge -> grant -> continue-as-new)
calling the same charge and credit-grant activities as the real worker, with no lifecycle core,
no events, no search attributes. ``python -m bench.baseline`` runs its worker (same settings,
same activity implementations and executor size as workers.main)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.types import ChargeRequest, ChargeResult, CreditGrant
    from domain.periods import period_key

WORKFLOW_TYPE = "BenchBaselineLoop"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=2))
TIMEOUT = timedelta(seconds=60)


class LoopInput(BaseModel):
    subscription_id: str
    customer_id: str
    anchor: datetime
    period_seconds: int
    amount: int
    credits: int
    index: int = 0


@workflow.defn(name=WORKFLOW_TYPE)
class BaselineLoop:
    @workflow.run
    async def run(self, inp: LoopInput) -> None:
        start = inp.anchor + timedelta(seconds=inp.period_seconds * inp.index)
        end = start + timedelta(seconds=inp.period_seconds)
        if start > workflow.now():
            await workflow.sleep(start - workflow.now())
        key = period_key(start)
        result = await workflow.execute_activity(
            "charge", ChargeRequest(
                idempotency_key=f"{inp.subscription_id}:{key}:1",
                subscription_id=inp.subscription_id, customer_id=inp.customer_id,
                amount=inp.amount, currency="usd", description=f"baseline {key}",
                purpose="first_period" if inp.index == 0 else "renewal", period_key=key),
            result_type=ChargeResult, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        if result.status == "succeeded":
            await workflow.execute_activity(
                "grant_period_credits", CreditGrant(
                    idempotency_key=f"{inp.subscription_id}:{key}:grant",
                    customer_id=inp.customer_id, subscription_id=inp.subscription_id,
                    period_key=key, amount=inp.credits, period_start=start, period_end=end),
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        workflow.continue_as_new(inp.model_copy(update={"index": inp.index + 1}))


if __name__ == "__main__":
    from bench.worker import serve

    asyncio.run(serve([BaselineLoop]))  # same tuning as workers.main
