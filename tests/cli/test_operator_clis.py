"""The operator CLIs as operators run them: the `temporal` commands printed in the README and the
`subs` CLI, as subprocesses against a time-skipping server with the real worker, localstripe and
SQLite. The README's `temporal workflow ...` lines are executed verbatim (only the subscription
id and the server address change), so the documentation cannot drift from the workflow."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import uuid
from pathlib import Path

import pytest

from config.settings import REPO_ROOT, Settings, TemporalSettings
from domain.lifecycle import NewSubscription
from domain.model import Actor
from domain.plans import Plan
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.support.temporal import time_skipping_env, venv_binary
from workers.main import build_worker
from workflows import client_ops

MONTHLY = Plan(id="pro-monthly", name="Pro", amount=2000, currency="usd", interval="month",
               included_credits=100)


def readme_temporal_commands() -> list[list[str]]:
    text = (REPO_ROOT / "README.md").read_text()
    return [shlex.split(line) for line in text.splitlines()
            if line.startswith("temporal workflow ")]


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=REPO_ROOT)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def stack(sqlite_url, localstripe_url):
    settings = Settings(database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
                        temporal=TemporalSettings(task_queue=f"cli-{uuid.uuid4().hex[:8]}"))
    env = await time_skipping_env()
    try:
        async with build_worker(env.client, settings):
            yield settings, env
    finally:
        await env.shutdown()


async def _subscribe(settings: Settings, env, sub_id: str) -> None:
    payments = PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe))
    payments.create_customer("cus_cli", email="ops@example.com", name="Ops")
    payments.add_test_card("cus_cli", CARD_OK)
    await client_ops.start(env.client, NewSubscription(
        id=sub_id, customer_id="cus_cli", organization_id="org_cli", plan=MONTHLY,
        requested_by=Actor(kind="operator", id="test")), settings.temporal.task_queue)
    for _ in range(100):  # the first charge settles
        state = await client_ops.get_state(env.client, sub_id)
        if state.status.value == "active":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"subscription did not become active: {state.status}")


async def test_readme_temporal_commands_work_verbatim(stack):
    settings, env = stack
    sub_id = "sub_readme"
    await _subscribe(settings, env, sub_id)
    address = env.client.service_client.config.target_host
    commands = readme_temporal_commands()
    names = [c[c.index("--name") + 1] if "--name" in c else c[c.index("--type") + 1]
             for c in commands]
    assert names == ["cancel", "reactivate", "postpone", "cancel_subscription", "state",
                     "rejected_signals"], "README examples changed: update this test"

    async def temporal(argv: list[str]) -> str:
        argv = [a.replace("subscription-sub_123", f"subscription-{sub_id}") for a in argv]
        code, out, err = await run(venv_binary("temporal"), *argv[1:], "--address", address,
                                   "-o", "json")
        assert code == 0, f"{shlex.join(argv)} failed: {err}{out}"
        return out

    await temporal(commands[0])  # signal cancel at period end
    state = await _wait_for(env, sub_id, lambda s: s.status.value == "non_renewing")
    assert state.cancel_at == state.current_period_end

    await temporal(commands[1])  # signal reactivate
    state = await _wait_for(env, sub_id, lambda s: s.status.value == "active")
    assert state.cancel_at is None

    # postpone needs a scheduled cancellation; the README's date lies beyond this period
    await temporal(commands[0])
    await _wait_for(env, sub_id, lambda s: s.status.value == "non_renewing")
    await temporal(commands[2])
    state = await _wait_for(env, sub_id, lambda s: s.cancel_at is not None
                            and s.cancel_at.isoformat().startswith("2027-01-31"))

    # a refused signal changes nothing and is listed by the rejected_signals query
    await temporal(commands[1])  # reactivate: allowed (cancel scheduled), returns to active
    await _wait_for(env, sub_id, lambda s: s.cancel_at is None)
    await temporal(commands[1])  # reactivate again: nothing scheduled -> refused
    rejected = json.loads(await temporal(commands[5]))["queryResult"][0]
    assert rejected and rejected[-1]["kind"] == "reactivate"

    state = json.loads(await temporal(commands[4]))["queryResult"][0]
    assert state["status"] == "active" and state["cancel_at"] is None

    out = await temporal(commands[3])  # update: immediate cancel answers with the new state
    assert "canceled" in out
    final = await client_ops.get_state(env.client, sub_id)
    assert final.status.value == "canceled" and final.ended_at is not None


async def _wait_for(env, sub_id, predicate, attempts: int = 200):
    for _ in range(attempts):
        state = await client_ops.get_state(env.client, sub_id)
        if predicate(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never held; last state {state.snapshot()}")


async def test_subs_cli_operates_a_subscription(stack):
    settings, env = stack
    sub_id = "sub_cli"
    await _subscribe(settings, env, sub_id)
    cli_env = {"SUBS_DATABASE_URL": settings.database_url,
               "SUBS_TEMPORAL__ADDRESS": env.client.service_client.config.target_host}
    subs = str(Path(venv_binary("python")).parent / "subs")

    code, out, err = await run(subs, "cancel", sub_id, "--mode", "at_period_end", env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "non_renewing"
    assert "Cancelling on" in json.loads(out)["renewal"]

    code, out, err = await run(subs, "postpone", sub_id, "--at", "2001-01-01T00:00:00+00:00",
                               env=cli_env)
    assert code == 2 and "refused" in err  # in the past: a clear error, nothing changed
    assert (await client_ops.get_state(env.client, sub_id)).status.value == "non_renewing"

    code, out, err = await run(subs, "reactivate", sub_id, env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "active"

    code, out, err = await run(subs, "show", sub_id, env=cli_env)
    assert code == 0 and json.loads(out)["renewal"].startswith("Renewing on")

    code, out, err = await run(subs, "list", "--organization", "org_cli", env=cli_env)
    assert code == 0 and sub_id in out and "active" in out

    code, out, err = await run(subs, "events", sub_id, env=cli_env)
    assert code == 0
    assert re.search(r"customer\.subscription\.updated\s+operator:cli", out)

    code, out, err = await run(subs, "credits", "cus_cli", env=cli_env)
    assert code == 0 and json.loads(out)["subscription"] == 100

    code, out, err = await run(subs, "cancel", sub_id, "--mode", "sometimes", env=cli_env)
    assert code == 2 and "invalid" in err
