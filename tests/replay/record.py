"""Record the workflow histories that tests/replay/test_replay.py replays (run by hand).

    .venv/bin/python -m tests.replay.record            # every scenario
    .venv/bin/python -m tests.replay.record dunning_recovers

Each scenario drives one subscription through the real worker (workflow + every activity) on a
fresh time-skipping Temporal server, localstripe and a throw-away SQLite file, then writes the
history of every run of the workflow (continue-as-new starts a new run after each renewal) to
``histories/<generation>/<scenario>-run<N>.json``. Re-record only on purpose: the committed
files are the histories that running subscriptions in production would have, so replaying them
proves a workflow change is safe for those subscriptions. A change that fails the replay goes
behind ``workflow.patched`` (README: "Changing the workflow safely"); it does not get
re-recorded away. Once it is in, its histories are recorded as a new generation (a new
directory, ``CURRENT`` below) beside the old ones, which stay and keep being replayed.

Generations: ``per-write`` (one activity per ledger or event write, before
PATCH_BATCHED_EFFECTS), ``batched`` (the local writes of a decision in one local activity,
search attributes upserted on change) and ``held`` (a call only an operator can fix holds the
subscription, PATCH_HOLD_ON_FAILED_CALL; adds the held scenarios). Stripe is reached through
tests/faults/stripe_proxy.py, so a scenario can make it fail.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.plans import load_catalog
from config.settings import Settings, TemporalSettings
from domain.lifecycle import NewSubscription
from domain.model import Actor, SubscriptionState
from domain.requests import Cancel, PaymentMethodUpdated, Postpone, Reactivate, Retry
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from store.migrate import upgrade
from tests.fakes_stripe import CARD_DECLINED, CARD_OK, start_localstripe, stripe_settings
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.temporal import time_skipping_env
from workers.main import build_worker
from workflows import client_ops, contract

HISTORIES = Path(__file__).resolve().parent / "histories"
CURRENT = HISTORIES / "held"  # where new recordings go
MINUTE = timedelta(minutes=1)


class Run:
    """One scenario's stack: settings, the environment, a payments service for customers."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, name: str,
                 proxy: StripeProxy) -> None:
        self.env, self.settings, self.name, self.proxy = env, settings, name, proxy
        self.sub_id = f"sub_replay_{name}"
        self.payments = PaymentService(get_engine(settings.database_url),
                                       StripeGateway(settings.stripe))

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(self, card: str = CARD_OK) -> SubscriptionState:
        customer = f"cus_replay_{self.name}"
        self.payments.create_customer(customer, email=f"{customer}@example.com", name="Ada")
        self.payments.add_test_card(customer, card)
        plan = load_catalog(self.settings.plans_file).get("pro-monthly")
        await client_ops.start(self.client, NewSubscription(
            id=self.sub_id, customer_id=customer, organization_id="org_replay", plan=plan,
            policy=client_ops.policy_from_settings(self.settings),
            requested_by=Actor(kind="operator", id="replay")), self.settings.temporal.task_queue)
        return await self.wait(lambda s: s.status.value == "active")

    def card(self, number: str) -> None:
        self.payments.add_test_card(f"cus_replay_{self.name}", number)

    async def state(self) -> SubscriptionState:
        return await client_ops.get_state(self.client, self.sub_id)

    async def wait(self, done: Callable[[SubscriptionState], bool],
                   timeout: float = 30.0) -> SubscriptionState:
        """Poll (real time) until the workflow reached a state; time does not move meanwhile."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                state = await self.state()
                if done(state):
                    return state
            except Exception:  # noqa: BLE001 - between runs (continue-as-new) a query can fail
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.name}: state not reached; last {await self.state()}")
            await asyncio.sleep(0.1)

    async def skip_to(self, when) -> None:
        await self.env.sleep(max(when - await self.env.get_current_time(), timedelta(0)))

    async def renew(self) -> SubscriptionState:
        before = await self.state()
        await self.skip_to(before.current_period_end + MINUTE)
        return await self.wait(lambda s: s.period_index > before.period_index
                               and s.awaiting_charge is None)


# Scenarios ----------------------------------------------------------------------------------


async def renewals(run: Run) -> None:
    """Two renewals: each one charges, grants credits and continues as new."""
    await run.start()
    await run.renew()
    await run.renew()


async def cancel_at_period_end(run: Run) -> None:
    await run.start()
    s = await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end",
                                                              feedback="too_expensive"))
    await run.skip_to(s.current_period_end + MINUTE)
    await run.wait(lambda s: s.status.value == "canceled")


async def cancel_immediately_refund(run: Run) -> None:
    s = await run.start()
    await run.skip_to(s.current_period_start + timedelta(days=10))
    await client_ops.send(run.client, run.sub_id, Cancel(mode="immediately", refund="prorated"))
    await run.wait(lambda s: s.status.value == "canceled")


async def reactivate(run: Run) -> None:
    await run.start()
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    await client_ops.signal(run.client, run.sub_id, Cancel(mode="at_period_end"))  # refused
    await client_ops.send(run.client, run.sub_id, Reactivate())
    await run.renew()


async def postpone(run: Run) -> None:
    s = await run.start()
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    later = s.current_period_end + timedelta(days=3)
    await client_ops.send(run.client, run.sub_id, Postpone(cancel_at=later))
    await run.skip_to(later + MINUTE)
    await run.wait(lambda s: s.status.value == "canceled")


async def dunning_recovers(run: Run) -> None:
    """A declined renewal, one failed retry, then a new card retries at once and succeeds."""
    s = await run.start()
    run.card(CARD_DECLINED)
    await run.skip_to(s.current_period_end + MINUTE)
    s = await run.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
    await run.skip_to(s.dunning.next_retry_at + MINUTE)
    await run.wait(lambda s: s.dunning is not None and s.dunning.attempts >= 2
                   and s.awaiting_charge is None)
    run.card(CARD_OK)
    await client_ops.send(run.client, run.sub_id, PaymentMethodUpdated())
    await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None)


async def dunning_cancels(run: Run) -> None:
    """Every retry declines: after the last attempt the subscription is cancelled (D9)."""
    s = await run.start()
    run.card(CARD_DECLINED)
    await run.skip_to(s.current_period_end + MINUTE)
    s = await run.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
    while s.status.value == "past_due":
        attempts = s.dunning.attempts
        await run.skip_to(s.dunning.next_retry_at + MINUTE)
        s = await run.wait(lambda s: s.awaiting_charge is None and (
            s.status.value != "past_due" or s.dunning.attempts > attempts))
    assert s.status.value == "canceled", s.status


BAD_KEY = {"type": "invalid_request_error", "message": "Invalid API Key provided"}


async def held_charge(run: Run) -> None:
    """The renewal's charge meets a rejected key: held; a cancel and a reactivate are answered
    meanwhile; the operator's retry (a signal) pays the renewal."""
    s = await run.start()
    run.proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=401, error=BAD_KEY))
    await run.skip_to(s.current_period_end + MINUTE)
    await run.wait(lambda s: s.hold is not None)
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    await client_ops.send(run.client, run.sub_id, Reactivate())
    await client_ops.signal(run.client, run.sub_id, Retry())
    await run.wait(lambda s: s.hold is None and s.period_index == 1
                   and s.awaiting_charge is None)


async def held_refund(run: Run) -> None:
    """An immediate cancellation's refund meets a rejected key: held in the middle of the
    cancellation; the operator's retry (an update) refunds and ends it."""
    s = await run.start()
    await run.skip_to(s.current_period_start + timedelta(days=10))
    run.proxy.inject(Fault("POST", "/v1/refunds", "status", status=401, error=BAD_KEY))
    await client_ops.signal(run.client, run.sub_id, Cancel(mode="immediately",
                                                           refund="prorated"))
    await run.wait(lambda s: s.hold is not None)
    await client_ops.send(run.client, run.sub_id, Retry())
    await run.wait(lambda s: s.status.value == "canceled")


SCENARIOS: dict[str, Callable[[Run], Awaitable[None]]] = {
    f.__name__: f for f in (renewals, cancel_at_period_end, cancel_immediately_refund,
                            reactivate, postpone, dunning_recovers, dunning_cancels,
                            held_charge, held_refund)
}
# Scenarios each generation was recorded with (held_* need the hold: later generations).
BEFORE_HOLDS = frozenset(SCENARIOS) - {"held_charge", "held_refund"}


# Recording ----------------------------------------------------------------------------------


async def run_chain(client: Client, workflow_id: str) -> list[str]:
    """The workflow's run ids, first to latest, following continue-as-new."""
    first = client.get_workflow_handle(workflow_id)
    desc = await first.fetch_history_events(page_size=1).__anext__()
    run_ids = [desc.workflow_execution_started_event_attributes.first_execution_run_id]
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_ids[-1]) \
            .fetch_history()
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return run_ids
        run_ids.append(last.workflow_execution_continued_as_new_event_attributes
                       .new_execution_run_id)


async def record(name: str, localstripe_url: str, workdir: Path,
                 out: Path = CURRENT) -> list[Path]:
    url = f"sqlite:///{workdir / f'{name}.db'}"
    upgrade(url)
    proxy = StripeProxy(localstripe_url).__enter__()
    settings = Settings(database_url=url, stripe=stripe_settings(proxy.url),
                        temporal=TemporalSettings(task_queue=f"replay-{uuid.uuid4().hex[:8]}"))
    env = await time_skipping_env()
    try:
        async with build_worker(env.client, settings):
            run = Run(env, settings, name, proxy)
            await SCENARIOS[name](run)
            written = []
            wid = contract.workflow_id(run.sub_id)
            for n, run_id in enumerate(await run_chain(env.client, wid), start=1):
                history = await env.client.get_workflow_handle(wid, run_id=run_id) \
                    .fetch_history()
                path = out / f"{name}-run{n}.json"
                path.write_text(history.to_json() + "\n")
                written.append(path)
            return written
    finally:
        await env.shutdown()
        proxy.__exit__(None, None, None)


async def main(names: list[str]) -> None:
    CURRENT.mkdir(parents=True, exist_ok=True)
    stripe = start_localstripe()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in names or list(SCENARIOS):
                for old in CURRENT.glob(f"{name}-run*.json"):
                    old.unlink()
                for path in await record(name, stripe.url, Path(tmp)):
                    print(f"wrote {path.relative_to(HISTORIES.parent.parent.parent)}")
    finally:
        stripe.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
