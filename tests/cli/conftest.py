"""The CLI tests' stack: a time-skipping server with the real worker, localstripe and SQLite."""

from __future__ import annotations

import uuid

import pytest

from config.settings import Settings, TemporalSettings
from tests.fakes_stripe import stripe_settings
from workers.main import build_worker


@pytest.fixture
async def stack(sqlite_url, localstripe_url, env):
    settings = Settings(database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
                        temporal=TemporalSettings(task_queue=f"cli-{uuid.uuid4().hex[:8]}"))
    async with build_worker(env.client, settings):
        yield settings, env
