"""HTTP API fixtures: the real app over ASGI, the real worker (workflow + every activity) on a
fresh time-skipping Temporal server per test, a migrated SQLite file and localstripe.

One environment per test keeps one running subscription per time-skipping server (see
shared/TOOLCHAIN.md); the server starts in a fraction of a second. Time moves only through
``env.sleep``; ``settle`` waits (in real time) for the worker to finish what the jump caused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from accounts import keys
from accounts.models import Role
from api.app import create_app
from config.settings import NotificationSettings, Settings, TemporalSettings
from store.engine import get_engine
from subscription_testing.stripe_server import stripe_settings
from tests.api.helpers import Org, bearer


@pytest.fixture
def settings(sqlite_url: str, localstripe_url: str) -> Settings:
    return Settings(
        database_url=sqlite_url,
        stripe=stripe_settings(localstripe_url),
        # A deadline for a loaded machine (six pytest workers on two cores beside a two-worker
        # renewal burst once took more than the default 10 s to answer a cancel): these
        # tests are about roles and rules; the deadline's own tests (test_outages) set theirs.
        temporal=TemporalSettings(task_queue=f"api-tests-{uuid.uuid4().hex[:8]}",
                                  api_timeout_seconds=30),
        # The tests' webhook receivers listen on 127.0.0.1.
        notifications=NotificationSettings(webhook_allow_private_targets=True),
    )


@pytest.fixture
async def http(env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app wired to the test server's client and clock (no worker: for tests that start
    no subscription)."""
    app = create_app(settings, temporal_client=env.client, clock=env.get_current_time)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, env: WorkflowEnvironment,
              settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the real worker (the workflow and every activity) polling its queue."""
    from workers.main import build_worker
    async with build_worker(env.client, settings):
        yield http


def _make_org(settings: Settings, name: str) -> Org:
    engine = get_engine(settings.database_url)
    org, owner = keys.create_organization_with_owner(engine, name)
    _, admin = keys.create_api_key(engine, org.id, Role.BILLING_ADMIN)
    _, member = keys.create_api_key(engine, org.id, Role.MEMBER)
    return Org(org.id, bearer(owner), bearer(admin), bearer(member))


@pytest.fixture
def org(settings: Settings) -> Org:
    return _make_org(settings, "Acme")


@pytest.fixture
def other_org(settings: Settings) -> Org:
    return _make_org(settings, "Globex")


@pytest.fixture
def operator(settings: Settings) -> dict[str, str]:
    _, raw = keys.create_operator_key(get_engine(settings.database_url), "tests")
    return bearer(raw)
