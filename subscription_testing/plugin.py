"""pytest fixtures of the testing kit (entry point ``subscription_testing.plugin``).

Scopes: localstripe is one process per session (customers are new per test, so tests do not see
each other's objects); the time-skipping server, the worker, the database and the task queue are
new for every test. A session-scoped time-skipping server is the known trap: the workflows an
earlier test left running wake up on every later jump, several subscriptions with long timers
make the server expire workflow tasks and hang, and its clock only moves forward, so a later
test's anchor may already lie in the past. A fresh server starts in about 0.1 s.

Override ``subscription_settings`` to change the engine's settings (dunning delays, grace,
the final action, ...) for a module or a directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from temporalio.testing import WorkflowEnvironment

    from config.settings import Settings
    from subscription_testing.kit import SubscriptionKit


# A localstripe already running (e.g. a CI service, or the session that runs this one): used as
# it is instead of starting one.
LOCALSTRIPE_URL_VARIABLE = "SUBSCRIPTION_TESTING_STRIPE_URL"


@pytest.fixture(scope="session")
def subscription_localstripe() -> Iterator[str]:
    """Base URL of a localstripe process of this session, with a store of its own (or the
    one ``SUBSCRIPTION_TESTING_STRIPE_URL`` names)."""
    from subscription_testing.stripe_server import start_localstripe

    if os.environ.get(LOCALSTRIPE_URL_VARIABLE):
        yield os.environ[LOCALSTRIPE_URL_VARIABLE]
        return
    server = start_localstripe()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def subscription_migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest schema once per session (per xdist worker):
    alembic costs about 0.15 s of CPU per database, a copy of the file about 1 ms."""
    from store.engine import get_engine
    from store.migrate import upgrade

    path = tmp_path_factory.mktemp("schema") / "migrated.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    get_engine(url).dispose()
    return path


def copy_sqlite(source: Path, target: Path) -> str:
    """A copy of a SQLite database through SQLite's backup API (it includes what still sits in
    the source's write-ahead log); returns the copy's URL."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


@pytest.fixture
def subscription_database(tmp_path: Path, subscription_migrated_sqlite: Path) -> str:
    """A migrated SQLite database of this test (a copy of the session's migrated one)."""
    return copy_sqlite(subscription_migrated_sqlite, tmp_path / "subscriptions.db")


@pytest.fixture
def subscription_settings(subscription_database: str, subscription_localstripe: str,
                          ) -> Settings:
    """The engine's settings for this test: its database, localstripe, its own task queue."""
    from config.settings import Settings, TemporalSettings
    from subscription_testing.stripe_server import stripe_settings

    return Settings(database_url=subscription_database,
                    stripe=stripe_settings(subscription_localstripe),
                    temporal=TemporalSettings(task_queue=f"kit-{uuid.uuid4().hex[:8]}"))


@pytest_asyncio.fixture
async def subscription_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping Temporal server of this test, the search attributes registered."""
    from subscription_testing.temporal import time_skipping_env

    env = await time_skipping_env()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture
async def subscription_kit(subscription_env: WorkflowEnvironment,
                           subscription_settings: Settings) -> AsyncIterator[SubscriptionKit]:
    """The kit, with the real worker (workers.main.build_worker) polling for the whole test."""
    from store.engine import get_engine
    from subscription_testing.kit import SubscriptionKit
    from workers.main import build_worker

    engine = get_engine(subscription_settings.database_url)
    async with build_worker(subscription_env.client, subscription_settings, engine):
        yield SubscriptionKit(subscription_env, subscription_settings, engine)
