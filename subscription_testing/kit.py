"""Years of a subscription in seconds: the real worker on a time-skipping Temporal server, a
database and localstripe, driven through the client operations the API uses (workflows.client_ops).

``SubscriptionKit`` owns the clock and creates subscriptions; ``Subscription`` sends one
subscription its requests and reads what it left: its state, charges (our records and
localstripe's), events and the customer's credits. ``advance_to`` moves the server's clock and
then waits, in real time, until every subscription the kit started has settled (no workflow task,
no activity in flight), so what a test reads next is the outcome of the jump, not a moment in it.
"""

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
from config.settings import Settings
from domain.lifecycle import NewSubscription
from domain.model import Actor, BillingPolicy, Event, SubscriptionState
from domain.plans import Plan
from domain.requests import (Cancel, PaymentMethodUpdated, Pause, Postpone, Reactivate, Request,
                             Resume)
from eventlog import store as events_store
from ledger.results import Balances
from ledger.service import Ledger
from payments.gateway import StripeGateway
from payments.models import ChargeAttempt, Refund
from payments.service import PaymentService
from store.engine import get_engine, session_scope
from subscription_testing.stripe_server import CARD_OK
from workflows import client_ops, contract
from workflows.types import RejectedSignal

QUERY_TIMEOUT = 3.0
SETTLE_TIMEOUT = 30.0


class TimeDidNotSkip(AssertionError):
    """The server's clock did not reach the target: a time-skipping server shared by tests
    that left workflows running (docs/testing.md), or not a time-skipping server at all."""


class SubscriptionKit:
    """One time-skipping server with the real worker polling ``settings.temporal.task_queue``,
    the database at ``settings.database_url`` and the Stripe at ``settings.stripe``."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, engine: Engine | None = None,
                 payments: PaymentService | None = None) -> None:
        self.env, self.settings = env, settings
        self.engine = engine or get_engine(settings.database_url)
        self.payments = payments or PaymentService(self.engine, StripeGateway(settings.stripe))
        self.ledger = Ledger(self.engine, settings.credits)
        self.subscriptions: list[Subscription] = []

    @property
    def client(self) -> Client:
        return self.env.client

    def plan(self, plan_id: str) -> Plan:
        """A plan of the catalog (``settings.plans_file``, config/plans.yaml by default)."""
        plan = load_catalog(self.settings.plans_file).get(plan_id)
        if plan is None:
            raise KeyError(f"no plan {plan_id!r} in {self.settings.plans_file}")
        return plan

    def customer(self, card: str | None = CARD_OK, customer_id: str | None = None) -> str:
        """A new customer (ours and localstripe's) with ``card`` as its default payment method
        (``CARD_DECLINED`` attaches, then every charge is declined; None: no card)."""
        customer_id = customer_id or f"cus_{uuid.uuid4().hex[:12]}"
        self.payments.create_customer(customer_id, email=f"{customer_id}@example.com")
        if card is not None:
            self.payments.add_test_card(customer_id, card)
        return customer_id

    async def subscribe(self, plan: Plan | str, *, card: str | None = CARD_OK,
                        anchor: datetime | None = None, trial_end: datetime | None = None,
                        customer_id: str | None = None, organization_id: str | None = None,
                        policy: BillingPolicy | None = None, settle: bool = True,
                        ) -> Subscription:
        """Start a subscription the way the API does. ``anchor``: the billing anchor, a
        future start (status ``scheduled`` until then, the first charge on it); None: now.
        ``settle``: wait until the first charge (if due now) has its outcome."""
        plan = self.plan(plan) if isinstance(plan, str) else plan
        customer_id = customer_id or self.customer(card)
        sub = Subscription(self, f"sub_{uuid.uuid4().hex[:12]}", customer_id)
        await client_ops.start(self.client, NewSubscription(
            id=sub.id, customer_id=customer_id, organization_id=organization_id, plan=plan,
            policy=policy or client_ops.policy_from_settings(self.settings),
            start_date=anchor, trial_end=trial_end,
            requested_by=Actor(kind="customer", id=customer_id)),
            self.settings.temporal.task_queue)
        self.subscriptions.append(sub)
        if settle:
            await sub.until(lambda s: s.awaiting_charge is None)
        return sub

    # The clock ---------------------------------------------------------------------------------

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def sleep_until(self, at: datetime) -> None:
        """Move the server's clock to ``at`` (no-op if already past) without waiting for what
        the jump set off; ``advance_to`` waits for it."""
        delta = at - await self.now()
        if delta > timedelta(0):
            await self.env.sleep(delta)
            if await self.now() < at:
                raise TimeDidNotSkip(f"the clock is at {await self.now()}, not {at}")

    async def advance_to(self, at: datetime) -> None:
        """Skip to ``at``: every renewal, retry and scheduled change due until then runs on
        the real worker; returns once every subscription of this kit has settled."""
        await self.sleep_until(at)
        for sub in self.subscriptions:
            await sub.settle()

    async def advance(self, delta: timedelta) -> None:
        await self.advance_to(await self.now() + delta)


class Subscription:
    """One subscription: its requests (through client_ops, as the API sends them), what it
    left in the database and at localstripe, and waits on its state."""

    def __init__(self, kit: SubscriptionKit, id: str | None, customer_id: str | None) -> None:
        self.kit, self.id, self.customer_id = kit, id, customer_id

    @property
    def client(self) -> Client:
        return self.kit.client

    # Requests ----------------------------------------------------------------------------------

    async def send(self, request: Request) -> SubscriptionState:
        """An update: the new state, or RequestRefused naming the rule."""
        return await client_ops.send(self.client, self.id, request)

    async def signal(self, request: Request) -> None:
        """Fire-and-forget: a refusal lands in ``rejected()``."""
        await client_ops.signal(self.client, self.id, request)

    async def cancel(self, mode: str = "at_period_end", **fields: Any) -> SubscriptionState:
        """Cancel (``cancel_at``, ``refund``, ``feedback`` as the API takes them); the
        settled state (an immediate refund has run)."""
        return await self._settled(Cancel(mode=mode, **fields))

    async def reactivate(self) -> SubscriptionState:
        return await self._settled(Reactivate())

    async def postpone(self, cancel_at: datetime) -> SubscriptionState:
        return await self._settled(Postpone(cancel_at=cancel_at))

    async def pause(self, mode: str = "at_period_end", **fields: Any) -> SubscriptionState:
        return await self._settled(Pause(mode=mode, **fields))

    async def resume(self, anchor: str = "keep") -> SubscriptionState:
        return await self._settled(Resume(anchor=anchor))

    async def _settled(self, request: Request) -> SubscriptionState:
        await self.send(request)
        return await self.settle()

    def set_card(self, card: str) -> None:
        """A new default card at Stripe, and nothing else: the next charge uses it (e.g.
        ``CARD_DECLINED``: a card that stops working)."""
        self.kit.payments.add_test_card(self.customer_id, card)

    async def update_card(self, card: str) -> SubscriptionState:
        """A new default card, then the request that retries a failed charge at once (D9), as
        the API's payment-method route sends it to a subscription in dunning."""
        record = self.kit.payments.add_test_card(self.customer_id, card)
        return await self._settled(PaymentMethodUpdated(
            payment_method_id=record.default_payment_method))

    # The clock ---------------------------------------------------------------------------------

    async def now(self) -> datetime:
        return await self.kit.now()

    async def advance_to(self, at: datetime) -> SubscriptionState:
        """``kit.advance_to``, answering this subscription's settled state."""
        await self.kit.advance_to(at)
        return await self.settle()

    async def advance(self, delta: timedelta) -> SubscriptionState:
        return await self.advance_to(await self.now() + delta)

    # Observation -------------------------------------------------------------------------------

    async def state(self) -> SubscriptionState:
        """The live state; for an ended subscription, its final one."""
        return await client_ops.get_state(self.client, self.id)

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> SubscriptionState:
        """The state once nothing is in flight."""
        return await self.until(lambda s: True, timeout)

    async def until(self, check: Callable[[SubscriptionState], bool],
                    timeout: float = SETTLE_TIMEOUT) -> SubscriptionState:
        """Poll (real time) until the state satisfies ``check`` and the workflow is idle."""
        return await wait_for(lambda: self._check_state(check), timeout)

    async def idle(self) -> bool:
        """Whether the latest run has nothing in flight: no workflow task, no activity.
        Queries see a new state before the activities it commanded (events, refunds) ran."""
        resp = await self.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=self.client.namespace,
                execution=WorkflowExecution(workflow_id=contract.workflow_id(self.id))))
        return not resp.pending_activities and not resp.HasField("pending_workflow_task")

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

    async def rejected(self) -> list[RejectedSignal]:
        return await client_ops.handle(self.client, self.id).query(
            contract.QUERY_REJECTED, result_type=list[RejectedSignal])

    async def until_rejected(self, count: int, timeout: float = 20.0) -> list[RejectedSignal]:
        """Wait until the workflow has refused ``count`` signals (they are processed async)."""
        async def check():
            rejected = await self.rejected()
            return rejected if len(rejected) >= count else None
        return await wait_for(check, timeout)

    async def finished(self) -> SubscriptionState:
        """The final state once the workflow has completed: every activity of the end (events,
        refunds, final charge) has run by then."""
        return await client_ops.handle(self.client, self.id).result()

    def events(self) -> list[Event]:
        """The recorded events (D8), oldest first."""
        return events_store.list_events(self.kit.engine, self.id, limit=1000)

    def event_types(self) -> list[str]:
        return [event.type for event in self.events()]

    def charges(self, status: str | None = None) -> list[ChargeAttempt]:
        """Our charge records, oldest first (``status``: e.g. "succeeded", "failed")."""
        with session_scope(self.kit.engine) as session:
            query = select(ChargeAttempt).where(ChargeAttempt.subscription_id == self.id)
            if status is not None:
                query = query.where(ChargeAttempt.status == status)
            return list(session.exec(query.order_by(ChargeAttempt.id)))

    def refunds(self) -> list[Refund]:
        with session_scope(self.kit.engine) as session:
            return list(session.exec(select(Refund).where(
                Refund.subscription_id == self.id).order_by(Refund.id)))

    def stripe_charges(self, status: str | None = "succeeded") -> list[dict[str, Any]]:
        """The customer's charges as Stripe (localstripe) holds them."""
        return stripe_charges(self.kit.payments, self.customer_id, status)

    def stripe_intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent localstripe holds for this subscription (by metadata: localstripe
        rejects PaymentIntent.list(customer=))."""
        v1 = self.kit.payments.gateway.client.v1
        page = v1.payment_intents.list({"limit": 100})
        return [pi.to_dict() for pi in page.auto_paging_iter()
                if (pi.to_dict().get("metadata") or {}).get("subscription_id") == self.id]

    def stripe_refunds(self, payment_intent_id: str) -> list[dict[str, Any]]:
        v1 = self.kit.payments.gateway.client.v1
        page = v1.refunds.list({"payment_intent": payment_intent_id, "limit": 100})
        return [r.to_dict() for r in page.auto_paging_iter()]

    async def credits(self) -> Balances:
        """The customer's credit balances now (server time): subscription, purchased, ..."""
        return self.kit.ledger.balances(self.customer_id, await self.now())


def stripe_charges(payments: PaymentService, customer_id: str,
                   status: str | None = "succeeded") -> list[dict[str, Any]]:
    """A customer's charges at Stripe, oldest first (``status`` None: all)."""
    stripe_id = payments.get_customer(customer_id).stripe_customer_id
    page = payments.gateway.client.v1.charges.list(params={"customer": stripe_id, "limit": 100})
    found = [c.to_dict() for c in page.auto_paging_iter()]
    return sorted((c for c in found if status is None or c["status"] == status),
                  key=lambda c: c["created"])


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
