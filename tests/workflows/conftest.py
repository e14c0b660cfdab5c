"""Workflow scenario fixtures: the real worker (SubscriptionWorkflow and every activity) on a
fresh time-skipping Temporal server per test, a migrated SQLite file and localstripe.

Nothing is faked: charges go through PaymentService to localstripe, events to the event store,
credits to the ledger. One environment per test keeps one running subscription per
time-skipping server (shared/TOOLCHAIN.md). Time moves only through ``env.sleep``;
``Scenario.until`` then waits, in real time, for the worker to finish what the jump caused.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings, TemporalSettings
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from subscription_testing.stripe_server import stripe_settings
from tests.workflows.scenario import Scenario
from workers.main import build_worker


@pytest.fixture
def settings(sqlite_url: str, localstripe_url: str) -> Settings:
    return Settings(
        database_url=sqlite_url,
        stripe=stripe_settings(localstripe_url),
        temporal=TemporalSettings(task_queue=f"wf-tests-{uuid.uuid4().hex[:8]}"),
    )


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return get_engine(settings.database_url)


@pytest.fixture
def payments(settings: Settings, engine: Engine) -> PaymentService:
    return PaymentService(engine, StripeGateway(settings.stripe))


@pytest.fixture
async def worker(env: WorkflowEnvironment, settings: Settings, engine: Engine):
    """The real worker polling this test's queue for the whole test."""
    async with build_worker(env.client, settings, engine) as running:
        yield running


@pytest.fixture
def scenario(env: WorkflowEnvironment, settings: Settings, engine: Engine,
             payments: PaymentService, worker) -> Scenario:
    return Scenario(env, settings, engine, payments)


@pytest.fixture
def bare_scenario(env: WorkflowEnvironment, settings: Settings, engine: Engine,
                  payments: PaymentService) -> Scenario:
    """A scenario without a running worker: the test starts and stops workers itself."""
    return Scenario(env, settings, engine, payments)
