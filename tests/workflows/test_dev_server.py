"""Updates racing renewals and continue-as-new, on the dev server in real time.

The time-skipping server cannot take this: an update landing in the same workflow task as a
timer makes it reject the task completion ("invalid history builder state for action") and
the run stalls. The dev server is the real thing, so the race is checked there, with a plan
renewing every second.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.errors import RequestRefused
from domain.model import Status
from domain.plans import Plan
from domain.requests import Cancel, Reactivate
from tests.support.temporal import dev_server_env
from tests.workflows.scenario import Scenario
from workers.main import build_worker

pytestmark = pytest.mark.temporal

EVERY_SECOND = Plan(id="every-second", name="Every second", amount=100, currency="usd",
                    interval="second")
HAMMER_SECONDS = 5.0


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await dev_server_env()
    try:
        yield env
    finally:
        await env.shutdown()


async def test_updates_racing_renewals_are_all_answered(dev_env, settings, engine, payments):
    """Every update sent while the subscription renews (and continues as new) every second
    is answered, by the new state or by a refusal; each period is charged exactly once."""
    scenario = Scenario(dev_env, settings, engine, payments)
    async with build_worker(dev_env.client, settings, engine):
        first = await scenario.start(EVERY_SECOND)
        far = first.anchor_boundary(3600)
        outcomes: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        deadline, i = loop.time() + HAMMER_SECONDS, 0
        while loop.time() < deadline:
            request = Cancel(mode="at_date", cancel_at=far) if i % 2 == 0 else Reactivate()
            try:
                state = await asyncio.wait_for(scenario.send(request), 10)
                outcomes[state.status.value] += 1
            except RequestRefused as refused:
                outcomes[refused.code] += 1
            i += 1
        await scenario.send(Cancel(mode="immediately"))
        final = await scenario.finished()

    assert final.status == Status.CANCELED and final.period_index >= 3, final
    assert outcomes == Counter({"active": i}), outcomes  # each in turn, none lost
    charges = scenario.charges()
    assert [c.period_key for c in charges] == [
        first.anchor_boundary(n).strftime("%Y%m%dT%H%M%SZ")
        for n in range(final.period_index + 1)]
    assert all(c.status == "succeeded" for c in charges)
