"""Shared by the CLI tests: run a command as a subprocess, start a subscription with a card,
wait for a state, and read `temporal workflow ...` lines out of the README."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys

from config.settings import REPO_ROOT, Settings
from domain.lifecycle import NewSubscription
from domain.model import Actor
from domain.plans import Plan
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK
from workflows import client_ops

# The `subs` script of this checkout (`.venv/bin/subs` runs the checkout the venv was installed
# from, which in a second worktree is not this one).
SUBS = (sys.executable, str(REPO_ROOT / "subscription_engine_cli.py"))

MONTHLY = Plan(id="pro-monthly", name="Pro", amount=2000, currency="usd", interval="month",
               included_credits=100)


def readme_commands(prefix: str) -> list[list[str]]:
    """README lines starting with ``prefix`` (e.g. "temporal workflow " or "$ temporal
    workflow "), split like a shell would, without a leading "$ "."""
    text = (REPO_ROOT / "README.md").read_text()
    return [shlex.split(line.removeprefix("$ ")) for line in text.splitlines()
            if line.startswith(prefix)]


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=REPO_ROOT)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def wait_for(env, sub_id, predicate, attempts: int = 200):
    for _ in range(attempts):
        state = await client_ops.get_state(env.client, sub_id)
        if predicate(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never held; last state {state.snapshot()}")


async def subscribe(settings: Settings, env, sub_id: str, customer_id: str | None = None):
    """A monthly subscription of a customer with a good card, once its first charge paid."""
    customer_id = customer_id or f"cus_{sub_id}"
    payments = PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe))
    payments.create_customer(customer_id, email="ops@example.com", name="Ops")
    payments.add_test_card(customer_id, CARD_OK)
    await client_ops.start(env.client, NewSubscription(
        id=sub_id, customer_id=customer_id, organization_id="org_cli", plan=MONTHLY,
        requested_by=Actor(kind="operator", id="test")), settings.temporal.task_queue)
    return await wait_for(env, sub_id, lambda s: s.status.value == "active")
