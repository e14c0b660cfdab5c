"""Scenario helpers: one subscription driven through the public client operations
(workflows.client_ops), plus what it left in the databases and at localstripe; built on the
testing kit (subscription_testing), which the workflow tests share with its users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from config.plans import load_catalog
from config.settings import DEFAULT_PLANS_FILE, Settings
from domain.model import SubscriptionState
from domain.plans import Plan
from payments.service import PaymentService
from subscription_testing.kit import Subscription, SubscriptionKit, wait_for  # noqa: F401
from subscription_testing.stripe_server import CARD_OK

MONTHLY = Plan(id="monthly", name="Monthly", amount=2000, currency="usd", interval="month")


def demo_plan() -> Plan:
    """The catalog's 20-second demo plan."""
    plan = load_catalog(DEFAULT_PLANS_FILE).get("demo")
    assert plan is not None and plan.interval == "second" and plan.interval_count == 20
    return plan


class Scenario(Subscription):
    """The testing kit's Subscription for one subscription at a time, as the workflow tests
    drive it: ``start`` picks the plan, card and the status to wait for; the clock moves only
    through ``sleep_until`` (then ``until`` waits for what the jump caused)."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, engine: Engine,
                 payments: PaymentService) -> None:
        super().__init__(SubscriptionKit(env, settings, engine, payments), None, None)
        self.env, self.settings, self.engine, self.payments = env, settings, engine, payments
        self.customer = self.kit.customer
        self.sleep_until = self.kit.sleep_until

    @property
    def sub_id(self) -> str | None:
        return self.id

    @sub_id.setter
    def sub_id(self, value: str) -> None:
        self.id = value

    async def start(self, plan: Plan = MONTHLY, card: str | None = CARD_OK,
                    customer_id: str | None = None, wait_status: str | None = "active",
                    start_date: datetime | None = None, **new: Any) -> SubscriptionState:
        sub = await self.kit.subscribe(plan, card=card, customer_id=customer_id,
                                       anchor=start_date, settle=False, **new)
        self.id, self.customer_id = sub.id, sub.customer_id
        if wait_status is None:
            return await self.until(lambda s: s.awaiting_charge is None)
        return await self.until(lambda s: s.status == wait_status and s.awaiting_charge is None)
