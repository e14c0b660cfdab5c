"""Shared pieces of the fault tests: a worker as a real OS process (so it can be killed with
SIGKILL), subscriptions started like the API starts them, and the ledger of what actually
happened (Stripe's charges, our charge records, credit grants, recorded events) to assert
"nothing lost, nothing doubled"."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO

from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.settings import REPO_ROOT, Settings, TemporalSettings
from domain import purchases
from domain.lifecycle import NewSubscription
from domain.model import Actor, SubscriptionState
from domain.plans import Plan
from eventlog.models import SubscriptionEventRow
from ledger.models import CreditEntry
from payments.gateway import StripeGateway
from payments.models import ChargeAttempt
from payments.service import PaymentService
from store.engine import get_engine
from subscription_testing.kit import stripe_charges
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.support import processes
from tests.support.temporal import dev_server_env
from workflows import client_ops


def server_settings(address: str, database_url: str, stripe_url: str, queue: str) -> Settings:
    """Settings for processes that talk to the Temporal server at ``address``, on a task
    queue of their own (``queue`` and a random suffix: runs never share one)."""
    return Settings(database_url=database_url, stripe=stripe_settings(stripe_url),
                    temporal=TemporalSettings(address=address,
                                              task_queue=f"{queue}-{uuid.uuid4().hex[:8]}"))


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a deployed worker would get for these settings (SUBS_*)."""
    s = settings.stripe
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBS_")}
    env.update({
        "SUBS_DATABASE_URL": settings.database_url,
        "SUBS_TEMPORAL__ADDRESS": settings.temporal.address,
        "SUBS_TEMPORAL__NAMESPACE": settings.temporal.namespace,
        "SUBS_TEMPORAL__TASK_QUEUE": settings.temporal.task_queue,
        "SUBS_STRIPE__API_KEY": s.api_key,
        "SUBS_STRIPE__API_BASE": s.api_base or "",
        "SUBS_STRIPE__MAX_REQUESTS_PER_SECOND": str(s.max_requests_per_second),
        "SUBS_STRIPE__RATE_LIMIT_SCOPE": s.rate_limit_scope,
        "SUBS_STRIPE__CONFIRM_OFF_SESSION": str(s.confirm_off_session).lower(),
        "SUBS_STRIPE__REQUEST_TIMEOUT_SECONDS": str(s.request_timeout_seconds),
        "SUBS_WORKER_METRICS_ADDRESS": "",
        "SUBS_LOG_FORMAT": "json",
        **extra,
    })
    return env


@dataclass
class WorkerProcess:
    """``python -m workers.main`` (or ``module``, e.g. ``api``) exactly as deployed; its log
    goes to a temporary file, closed when the process is stopped or killed (its text is kept
    for ``output``: an open file left to the garbage collector is a ResourceWarning)."""

    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log: IO[bytes] | None = None
    module: str = "workers.main"
    final_output: str = ""

    def start(self) -> WorkerProcess:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", self.module], env=self.env,
                                     cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> int:
        """SIGKILL: no shutdown hooks, in-flight activities are abandoned mid-call."""
        assert self.proc is not None
        self.proc.kill()
        code = self.proc.wait(10)
        self._close_log()
        return code

    def stop(self) -> None:
        processes.stop(self.proc)
        self._close_log()

    def _close_log(self) -> None:
        if self.log is not None:
            self.final_output = self.output()
            self.log.close()
            self.log = None

    def output(self) -> str:
        if self.log is None:
            return self.final_output
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@dataclass
class Takeover:
    """A worker killed mid-charge and its replacement: the dev server, settings for it, a
    customer with a card and a subscription id; ``first`` runs, ``second`` is started by the
    test once ``first`` is dead."""

    env: WorkflowEnvironment
    settings: Settings
    customer: str
    sub_id: str
    first: WorkerProcess
    second: WorkerProcess


@asynccontextmanager
async def takeover(stripe_url: str, database_url: str) -> AsyncIterator[Takeover]:
    env = await dev_server_env()
    settings = server_settings(env.client.service_client.config.target_host, database_url,
                               stripe_url, "killed")
    customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
    new_customer(settings, customer, CARD_OK)
    first = WorkerProcess(worker_env(settings)).start()
    second = WorkerProcess(worker_env(settings))
    try:
        yield Takeover(env, settings, customer, sub_id, first, second)
    finally:
        first.stop()
        second.stop()
        await env.shutdown()


def new_customer(settings: Settings, customer_id: str, card: str) -> PaymentService:
    payments = PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe))
    payments.create_customer(customer_id, email=f"{customer_id}@example.com", name="Ada")
    payments.add_test_card(customer_id, card)
    return payments


async def start(client: Client, settings: Settings, sub_id: str, customer_id: str,
                plan: Plan, organization_id: str = "org_faults") -> None:
    await client_ops.start(client, NewSubscription(
        id=sub_id, customer_id=customer_id, organization_id=organization_id, plan=plan,
        policy=client_ops.policy_from_settings(settings),
        requested_by=Actor(kind="operator", id="faults")), settings.temporal.task_queue)


async def wait_for(client: Client, sub_id: str, done: Callable[[SubscriptionState], bool],
                   timeout: float = 30.0, tick: Callable | None = None) -> SubscriptionState:
    """Poll in real time; ``tick`` (e.g. a short env.sleep) runs between polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while loop.time() < deadline:
        try:
            last = await client_ops.get_state(client, sub_id)
            if done(last):
                return last
        except Exception as err:  # noqa: BLE001 - server restarting, run switching
            last = err
        if tick is not None:
            await tick()
        await asyncio.sleep(0.2)
    raise AssertionError(f"state not reached for {sub_id}; last: {last!r}")


@dataclass
class Books:
    """What happened, read from Stripe and from our tables."""

    stripe_succeeded: list[int]  # amounts of succeeded charges at Stripe
    charges_by_period: Counter  # succeeded charge records per period key
    grants_by_period: Counter  # period credit grants per period key
    event_seqs: list[int]
    event_types: Counter


def books(settings: Settings, customer_id: str, sub_id: str) -> Books:
    engine = get_engine(settings.database_url)
    payments = PaymentService(engine, StripeGateway(settings.stripe))
    with Session(engine) as session:
        attempts = session.exec(select(ChargeAttempt).where(
            ChargeAttempt.subscription_id == sub_id)).all()
        grants = session.exec(select(CreditEntry).where(
            CreditEntry.subscription_id == sub_id, CreditEntry.entry_type == "grant")).all()
        events = session.exec(select(SubscriptionEventRow).where(
            SubscriptionEventRow.subscription_id == sub_id)).all()
    return Books(
        stripe_succeeded=[c["amount"] for c in stripe_charges(payments, customer_id)],
        charges_by_period=Counter(a.period_key for a in attempts if a.status == "succeeded"),
        grants_by_period=Counter(g.period_key for g in grants),
        event_seqs=sorted(e.seq for e in events),
        event_types=Counter(e.type for e in events),
    )


def assert_exactly_once(b: Books, state: SubscriptionState, periods: int, amount: int) -> None:
    """One charge, one credit grant and one invoice.paid per paid period; every event the
    workflow emitted is recorded once (sequence 1..event_seq, no gaps, no repeats)."""
    assert b.stripe_succeeded == [amount] * periods, b.stripe_succeeded
    assert len(b.charges_by_period) == periods and set(b.charges_by_period.values()) == {1}, \
        b.charges_by_period
    assert b.grants_by_period == b.charges_by_period, (b.grants_by_period, b.charges_by_period)
    assert b.event_types["invoice.paid"] == periods, b.event_types
    assert b.event_seqs == list(range(1, state.event_seq + 1)), (b.event_seqs, state.event_seq)


def purchase_books(settings: Settings, customer_id: str) -> tuple[dict, dict]:
    """A customer's credit purchases counted from both sides, per purchase key: the amounts
    of succeeded charges at Stripe (its charges list; the key from each charge's intent) and
    the purchased credits in the ledger."""
    engine = get_engine(settings.database_url)
    payments = PaymentService(engine, StripeGateway(settings.stripe))
    v1 = payments.gateway.client.v1
    charged: dict[str, list[int]] = {}
    for charge in stripe_charges(payments, customer_id):
        metadata = v1.payment_intents.retrieve(charge["payment_intent"]).to_dict()["metadata"]
        if metadata.get("purpose") in purchases.PURPOSES:
            charged.setdefault(metadata["idempotency_key"], []).append(charge["amount"])
    with Session(engine) as session:
        lots = session.exec(select(CreditEntry).where(
            CreditEntry.customer_id == customer_id, CreditEntry.entry_type == "grant",
            CreditEntry.credit_kind == "purchased")).all()
    credited: dict[str, list[int]] = {}
    for lot in lots:
        credited.setdefault(lot.idempotency_key, []).append(purchases.price(lot.amount))
    return charged, credited
