"""Scenario helpers: one subscription driven through the public client operations
(workflows.client_ops), plus what it left in the databases and at localstripe."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.plans import load_catalog
from config.settings import DEFAULT_PLANS_FILE, Settings
from domain.lifecycle import NewSubscription
from domain.model import Actor, Event, SubscriptionState
from domain.plans import Plan
from domain.requests import Request
from eventlog import store as events_store
from payments.models import ChargeAttempt, Refund
from payments.service import PaymentService
from store.engine import session_scope
from tests.fakes_stripe import CARD_OK
from workflows import client_ops, contract
from workflows.types import RejectedSignal

QUERY_TIMEOUT = 3.0
MONTHLY = Plan(id="monthly", name="Monthly", amount=2000, currency="usd", interval="month")


def demo_plan() -> Plan:
    """The catalog's 20-second demo plan."""
    plan = load_catalog(DEFAULT_PLANS_FILE).get("demo")
    assert plan is not None and plan.interval == "second" and plan.interval_count == 20
    return plan


class Scenario:
    """One subscription driven through the public client operations, plus what it left in
    the databases and at localstripe."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, engine: Engine,
                 payments: PaymentService) -> None:
        self.env, self.settings, self.engine, self.payments = env, settings, engine, payments
        self.sub_id: str | None = None

    @property
    def client(self) -> Client:
        return self.env.client

    # Setup ---------------------------------------------------------------------------------

    def customer(self, card: str | None = CARD_OK) -> str:
        customer_id = f"cus_{uuid.uuid4().hex[:12]}"
        self.payments.create_customer(customer_id, email=f"{customer_id}@example.com")
        if card is not None:
            self.payments.add_test_card(customer_id, card)
        return customer_id

    async def start(self, plan: Plan = MONTHLY, card: str | None = CARD_OK,
                    customer_id: str | None = None, wait_status: str | None = "active",
                    **new: Any) -> SubscriptionState:
        customer_id = customer_id or self.customer(card)
        self.sub_id = f"sub_{uuid.uuid4().hex[:12]}"
        new.setdefault("policy", client_ops.policy_from_settings(self.settings))
        await client_ops.start(self.client, NewSubscription(
            id=self.sub_id, customer_id=customer_id, plan=plan,
            requested_by=Actor(kind="customer", id=customer_id), **new),
            self.settings.temporal.task_queue)
        if wait_status is None:
            return await self.until(lambda s: s.awaiting_charge is None)
        return await self.until(lambda s: s.status == wait_status and s.awaiting_charge is None)

    # Requests ------------------------------------------------------------------------------

    async def send(self, request: Request) -> SubscriptionState:
        return await client_ops.send(self.client, self.sub_id, request)

    async def signal(self, request: Request) -> None:
        await client_ops.signal(self.client, self.sub_id, request)

    # Observation ---------------------------------------------------------------------------

    async def state(self) -> SubscriptionState:
        return await client_ops.get_state(self.client, self.sub_id)

    async def rejected(self) -> list[RejectedSignal]:
        return await client_ops.handle(self.client, self.sub_id).query(
            contract.QUERY_REJECTED, result_type=list[RejectedSignal])

    async def finished(self) -> SubscriptionState:
        """The final state once the workflow has completed: every activity of the end (events,
        refunds, final charge) has run by then."""
        return await client_ops.handle(self.client, self.sub_id).result()

    async def until_rejected(self, count: int, timeout: float = 20.0) -> list[RejectedSignal]:
        """Wait until the workflow has refused ``count`` signals (they are processed async)."""
        async def check():
            rejected = await self.rejected()
            return rejected if len(rejected) >= count else None
        return await wait_for(check, timeout)

    async def idle(self) -> bool:
        """Whether the latest run has nothing in flight: no workflow task, no activity.
        Queries see a new state before the activities it commanded (events, refunds) ran."""
        resp = await self.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=self.client.namespace,
                execution=WorkflowExecution(workflow_id=contract.workflow_id(self.sub_id))))
        return not resp.pending_activities and not resp.HasField("pending_workflow_task")

    async def until(self, check: Callable[[SubscriptionState], bool],
                    timeout: float = 20.0) -> SubscriptionState:
        """Poll (real time) until the state satisfies ``check`` and the workflow is idle."""
        return await wait_for(lambda: self._check_state(check), timeout)

    async def _check_state(self, check: Callable[[SubscriptionState], bool]):
        try:
            if not check(await self._query_state()) or not await self.idle():
                return None
            state = await self._query_state()  # as of idle: the activities' effects are in
        except TimeoutError:
            return None
        return state if check(state) else None

    async def _query_state(self) -> SubscriptionState:
        """The state, asked again if a query is lost: after a worker shut down, the
        time-skipping server may hand a query to one of its dead long-polls, and a lost query
        is never redelivered (workflow tasks are, after their timeout)."""
        return await asyncio.wait_for(self.state(), QUERY_TIMEOUT)

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def sleep_until(self, at: datetime) -> None:
        """Move the server's clock to ``at`` (no-op if already past)."""
        delta = at - await self.now()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    def events(self) -> list[Event]:
        return events_store.list_events(self.engine, self.sub_id, limit=1000)

    def charges(self, status: str | None = None) -> list[ChargeAttempt]:
        with session_scope(self.engine) as session:
            query = select(ChargeAttempt).where(ChargeAttempt.subscription_id == self.sub_id)
            if status is not None:
                query = query.where(ChargeAttempt.status == status)
            return list(session.exec(query.order_by(ChargeAttempt.id)))

    def refunds(self) -> list[Refund]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(Refund).where(
                Refund.subscription_id == self.sub_id).order_by(Refund.id)))

    def stripe_intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent localstripe holds for this subscription (by metadata: localstripe
        rejects PaymentIntent.list(customer=))."""
        v1 = self.payments.gateway.client.v1
        page = v1.payment_intents.list({"limit": 100})
        return [pi.to_dict() for pi in page.auto_paging_iter()
                if (pi.to_dict().get("metadata") or {}).get("subscription_id") == self.sub_id]

    def stripe_refunds(self, payment_intent_id: str) -> list[dict[str, Any]]:
        v1 = self.payments.gateway.client.v1
        page = v1.refunds.list({"payment_intent": payment_intent_id, "limit": 100})
        return [r.to_dict() for r in page.auto_paging_iter()]


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``check`` (real time) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
