"""History growth: one subscription on a monthly plan for Y years on the time-skipping server
(the real worker, localstripe, SQLite). It is cancelled ``at_date`` Y years out, so the workflow
completes by itself while the test server skips time; then the continue-as-new chain (a run
spans renewals up to RUN_EVENTS_BOUND events) is walked backwards from the last run, counting
the events and bytes of every run's history."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client

from bench.burst import stripe_settings
from bench.stack import start_localstripe
from config.plans import load_catalog
from config.settings import Settings, TemporalSettings
from domain.lifecycle import NewSubscription
from domain.requests import Cancel
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from store.migrate import upgrade
from tests.support.temporal import time_skipping_env
from workers.main import build_worker
from workflows import client_ops, contract

CARD_OK = "4242424242424242"


async def run_chain(client: Client, workflow_id: str) -> list[dict]:
    """Every run of the workflow, oldest first: events, bytes, first/last event types."""
    resp = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=client.namespace,
                                         execution=WorkflowExecution(workflow_id=workflow_id)))
    run_id = resp.workflow_execution_info.execution.run_id
    runs = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = history.events
        runs.append({"run_id": run_id, "events": len(events),
                     "bytes": sum(e.ByteSize() for e in events),
                     "last_event": events[-1].WhichOneof("attributes") if events else None})
        started = events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
    return list(reversed(runs))


async def _result(client: Client, sub_id: str, timeout: float = 600.0):
    """The final state once the chain has completed (polled in real time)."""
    deadline = time.monotonic() + timeout
    h = client_ops.handle(client, sub_id)
    while not await client_ops.closed(client, sub_id):
        if time.monotonic() > deadline:
            raise RuntimeError("the subscription did not end in time")
        await asyncio.sleep(0.2)
    return await h.result()


async def run(years: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'history.db'}"
        upgrade(db_url)
        stripe = start_localstripe()
        env = await time_skipping_env()
        try:
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            settings = Settings(database_url=db_url, stripe=stripe_settings(stripe.url, 1000),
                                temporal=TemporalSettings(task_queue=queue))
            payments = PaymentService(get_engine(db_url), StripeGateway(settings.stripe))
            payments.create_customer("bench_history", email="h@example.com", name="History")
            payments.add_test_card("bench_history", CARD_OK)
            plan = load_catalog(settings.plans_file).get("pro-monthly")
            sub_id = f"hist-{uuid.uuid4().hex[:8]}"
            async with build_worker(env.client, settings):
                await client_ops.start(env.client, NewSubscription(
                    id=sub_id, customer_id="bench_history", plan=plan), queue)
                state = await client_ops.get_state(env.client, sub_id)
                while state.awaiting_charge is not None or state.status.value == "incomplete":
                    state = await client_ops.get_state(env.client, sub_id)
                end = state.start_date.replace(year=state.start_date.year + years)
                await client_ops.send(env.client, sub_id, Cancel(mode="at_date", cancel_at=end))
                # One jump past the end: the server fires each timer in turn and waits for
                # the worker (activities hold time), as tests/workflows/test_long_life does.
                await env.sleep(end - await env.get_current_time() + timedelta(days=1))
                final = await _result(env.client, sub_id)
                runs = await run_chain(env.client, contract.workflow_id(sub_id))
        finally:
            await env.shutdown()
            stripe.stop()
    periods = final.period_index + 1
    total = sum(r["events"] for r in runs)
    renewal_runs = runs[1:-1] or runs
    return {
        "years": years, "plan": plan.id, "periods": periods, "runs": len(runs),
        "events_total": total, "events_per_period": round(total / periods, 1),
        "events_per_run_typical": sorted(r["events"] for r in renewal_runs)[
            len(renewal_runs) // 2],
        "max_events_per_run": max(r["events"] for r in runs),
        "max_history_bytes": max(r["bytes"] for r in runs),
        "first_run_events": runs[0]["events"], "last_run_events": runs[-1]["events"],
        "final_status": final.status.value,
        "continue_as_new_limit": 4096, "hard_limit": 51200,
        "wall_seconds_note": "time-skipping server; wall time is not a figure here",
        "ended_at": final.ended_at if hasattr(final, "ended_at") else None,
        "duration_days": round((end - state.start_date) / timedelta(days=1)),
    }
