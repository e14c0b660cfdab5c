"""Pause and resume (D12) as operators run them: the README's `$ temporal workflow ...` pause lines
executed verbatim (only the subscription id and server address change) and `subs pause` /
`subs resume`, as subprocesses against a time-skipping server with the real worker."""

from __future__ import annotations

import asyncio
import json
import os
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

pytestmark = pytest.mark.temporal

MONTHLY = Plan(id="pro-monthly", name="Pro", amount=2000, currency="usd", interval="month",
               included_credits=100)


def readme_pause_commands() -> list[list[str]]:
    text = (REPO_ROOT / "README.md").read_text()
    return [shlex.split(line.removeprefix("$ ")) for line in text.splitlines()
            if line.startswith("$ temporal workflow ")]


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=REPO_ROOT)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def stack(sqlite_url, localstripe_url):
    settings = Settings(database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
                        temporal=TemporalSettings(task_queue=f"pause-{uuid.uuid4().hex[:8]}"))
    env = await time_skipping_env()
    try:
        async with build_worker(env.client, settings):
            yield settings, env
    finally:
        await env.shutdown()


async def _subscribe(settings: Settings, env, sub_id: str):
    payments = PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe))
    payments.create_customer(f"cus_{sub_id}", email="ops@example.com", name="Ops")
    payments.add_test_card(f"cus_{sub_id}", CARD_OK)
    await client_ops.start(env.client, NewSubscription(
        id=sub_id, customer_id=f"cus_{sub_id}", organization_id="org_cli", plan=MONTHLY,
        requested_by=Actor(kind="operator", id="test")), settings.temporal.task_queue)
    return await _wait_for(env, sub_id, lambda s: s.status.value == "active")


async def _wait_for(env, sub_id, predicate, attempts: int = 200):
    for _ in range(attempts):
        state = await client_ops.get_state(env.client, sub_id)
        if predicate(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never held; last state {state.snapshot()}")


async def test_readme_pause_commands_work_verbatim(stack):
    settings, env = stack
    sub_id = "sub_readme_pause"
    first = await _subscribe(settings, env, sub_id)
    address = env.client.service_client.config.target_host
    commands = readme_pause_commands()
    assert [c[c.index("--name") + 1] for c in commands] == [
        "pause_subscription", "resume", "pause", "resume_subscription"], \
        "README pause examples changed: update this test"

    async def temporal(argv: list[str]) -> str:
        argv = [a.replace("subscription-sub_123", f"subscription-{sub_id}") for a in argv]
        code, out, err = await _run(venv_binary("temporal"), *argv[1:], "--address", address,
                                    "-o", "json")
        assert code == 0, f"{shlex.join(argv)} failed: {err}{out}"
        return out

    out = await temporal(commands[0])  # update: pause at period end, answers the new state
    assert "at_period_end" in out and "Pausing on" not in out  # state, not the portal line
    state = await _wait_for(env, sub_id, lambda s: s.pause is not None)
    assert state.status.value == "active" and state.pause.paused_at == first.current_period_end

    await temporal(commands[1])  # signal resume: removes the scheduled pause
    await _wait_for(env, sub_id, lambda s: s.pause is None)

    await temporal(commands[2])  # signal pause now, resume_at 2030-03-01
    state = await _wait_for(env, sub_id, lambda s: s.status.value == "paused")
    assert state.pause.resume_at.isoformat().startswith("2030-03-01")

    await env.sleep(86400)  # a day later (a reset in the period's first second is a keep)
    out = await temporal(commands[3])  # update: resume with a new anchor, charged now
    assert '"status": "active"' in out.replace('":"', '": "')
    state = await client_ops.get_state(env.client, sub_id)
    assert state.status.value == "active" and state.billing_cycle_anchor > first.created
    assert state.period_key != first.period_key and state.current_period_paid == 2000


async def test_subs_pause_and_resume(stack):
    settings, env = stack
    sub_id = "sub_cli_pause"
    await _subscribe(settings, env, sub_id)
    cli_env = {"SUBS_DATABASE_URL": settings.database_url,
               "SUBS_TEMPORAL__ADDRESS": env.client.service_client.config.target_host}
    subs = str(Path(venv_binary("python")).parent / "subs")

    code, out, err = await _run(subs, "pause", sub_id, "--mode", "now", "--resume-at",
                                "2001-01-01T00:00:00+00:00", env=cli_env)
    assert code == 2 and "resume_at" in err  # in the past: a clear error, nothing changed
    assert (await client_ops.get_state(env.client, sub_id)).status.value == "active"

    code, out, err = await _run(subs, "pause", sub_id, "--mode", "now", env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "paused"

    code, out, err = await _run(subs, "reactivate", sub_id, env=cli_env)
    assert code == 2 and "use resume" in err, (code, err)

    code, out, err = await _run(subs, "resume", sub_id, "--anchor", "sometime", env=cli_env)
    assert code == 2 and "invalid" in err

    code, out, err = await _run(subs, "resume", sub_id, env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "active" and json.loads(out)["renewal"].startswith(
        "Renewing on")
