"""Renewal burst: N subscriptions on a short-interval plan, all anchored at the same instant T0,
so all N first periods are charged at T0 (activation burst) and all N renewals fall due at
T0 + P (renewal burst, the figure that matters). K worker subprocesses per scenario
(``--workers``, default 1), a fresh Temporal dev server per scenario, one Stripe and one
database for the whole run. Stripe is the benchmark's own constant-cost stand-in
(bench/fast_stripe.py, the default: N = 10,000 measures the engine, not the fake) or
localstripe (``--stripe localstripe``, which slows as its store grows).

A renewal counts as done when its charge succeeded and its credit grant is in the ledger (the
core records the state change and events in the same sequence). Exactly-once is checked from
both sides: our charge records (one succeeded attempt per subscription and period, distinct
idempotency keys) and Stripe's PaymentIntents (at most one succeeded intent per key).
A scenario with a Stripe limit has the stand-in answer 429 above it (localstripe cannot: there
the check is the observed rate) and the workers' limiter set one below it (the token bucket
lets rate + 1 requests into one wall-clock second).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe as stripe_sdk
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.fast_stripe import FastStripe
from bench.stack import Child, TemporalServer, cpu_seconds, rss_mb, start_smtp_sink
from config.settings import NotificationSettings, Settings, StripeSettings, TemporalSettings
from domain.lifecycle import NewSubscription
from domain.periods import period_key
from domain.plans import Plan
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from workflows import client_ops
from workflows.connection import connect

CARD_OK = "4242424242424242"
AMOUNT, CREDITS = 500, 100
# Workflow starts per second assumed when choosing T0 (late starts are detected and reported):
# about 12/s were measured on the shared 2-core machine.
START_RATE = 8.0
# Seconds added to the time the starts take (N / start rate) before T0: room for a slow start
# on a loaded machine. The smoke tests' four subscriptions need less.
LEAD_MARGIN = 10.0


@dataclass
class Scenario:
    name: str
    kind: str  # "core" (SubscriptionWorkflow + workers.main) or "baseline" (bench.baseline)
    rate: float  # Stripe requests per second allowed by the worker's limiter
    stripe_limit: float | None = None  # enforced by the stand-in (429 above it)


def make_customers(db_url: str, stripe_url: str, n: int) -> list[str]:
    """N customers with a default card, created in parallel (setup, not measured)."""
    service = PaymentService(get_engine(db_url), StripeGateway(stripe_settings(stripe_url, 1000)))

    def one(i: int) -> str:
        cid = f"bench_cus_{i:06d}"
        service.create_customer(cid, email=f"{cid}@example.com", name=cid)
        service.add_test_card(cid, CARD_OK)
        return cid

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(n)))


def stripe_settings(url: str, rate: float) -> StripeSettings:
    return StripeSettings(api_base=url, max_requests_per_second=rate, confirm_off_session=False,
                          request_timeout_seconds=20.0)


def worker_env(settings: Settings, task_queue: str) -> dict[str, str]:
    return {
        "SUBS_DATABASE_URL": settings.database_url,
        "SUBS_TEMPORAL__ADDRESS": settings.temporal.address,
        "SUBS_TEMPORAL__TASK_QUEUE": task_queue,
        "SUBS_STRIPE__API_BASE": settings.stripe.api_base or "",
        "SUBS_STRIPE__MAX_REQUESTS_PER_SECOND": str(settings.stripe.max_requests_per_second),
        "SUBS_STRIPE__CONFIRM_OFF_SESSION": "false",
        "SUBS_NOTIFICATIONS__SMTP_HOST": settings.notifications.smtp_host,
        "SUBS_NOTIFICATIONS__SMTP_PORT": str(settings.notifications.smtp_port),
        "SUBS_TEMPORAL__MAX_CACHED_WORKFLOWS": str(settings.temporal.max_cached_workflows),
        "SUBS_LOG_LEVEL": "WARNING",
    }


def reader(db_url: str):
    """A connection per poll (no pool): a pooled SQLite connection was seen reading a stale
    snapshot while the worker process kept writing."""
    return create_engine(db_url, poolclass=NullPool)


def _counts(engine, prefix: str, pk: str) -> tuple[int, int]:
    with engine.connect() as conn:
        charged = conn.execute(text(
            "SELECT count(*) FROM charge_attempt WHERE subscription_id LIKE :p "
            "AND period_key = :k AND status = 'succeeded'"), {"p": prefix + "%", "k": pk}).scalar()
        granted = conn.execute(text(
            "SELECT count(*) FROM credit_entry WHERE idempotency_key LIKE :p"),
            {"p": f"{prefix}%:{pk}:grant"}).scalar()
    return int(charged), int(granted)


async def _wait_done(engine, prefix: str, pk: str, n: int, due: datetime,
                     timeout: float, workers: list[Child]) -> tuple[float | None, float]:
    """Poll until all N periods are charged and granted; (seconds after ``due``, charge-only)."""
    charged_at = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited ({worker.process.returncode}):\n"
                                   f"{worker.tail(8000)}")
        charged, granted = _counts(engine, prefix, pk)
        now = datetime.now(UTC)
        if charged >= n and charged_at is None:
            charged_at = (now - due).total_seconds()
        if granted >= n:
            return (now - due).total_seconds(), charged_at or (now - due).total_seconds()
        await asyncio.sleep(0.25)
    return None, charged_at or float("nan")


def exactly_once(engine, prefix: str, stripe) -> dict:
    """Double-charge checks from our records and from Stripe's PaymentIntents."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT subscription_id, period_key, idempotency_key, payment_intent_id "
            "FROM charge_attempt WHERE subscription_id LIKE :p AND status = 'succeeded'"),
            {"p": prefix + "%"}).all()
    per_period = Counter((r[0], r[1]) for r in rows)
    keys = {r[2] for r in rows}
    intents = {r[3] for r in rows}
    per_key: Counter[str] = Counter()
    if isinstance(stripe, FastStripe):  # it counts succeeded intents per key itself
        per_key.update({k: v for k, v in stripe.stats()["succeeded_per_key"].items()
                        if k.startswith(prefix)})
    else:
        client = stripe_sdk.StripeClient("sk_test_local", base_addresses={"api": stripe.url})
        for obj in client.v1.payment_intents.list({"limit": 100}).auto_paging_iter():
            pi = obj.to_dict()
            key = (pi.get("metadata") or {}).get("idempotency_key", "")
            if key.startswith(prefix) and pi.get("status") == "succeeded":
                per_key[key] += 1
    return {
        "succeeded_charges": len(rows),
        "distinct_keys": len(keys),
        "distinct_intents": len(intents),
        "periods_charged_twice": sum(1 for c in per_period.values() if c > 1),
        "stripe_succeeded_intents": sum(per_key.values()),
        "stripe_keys_with_2plus_intents": sum(1 for c in per_key.values() if c > 1),
        "double_charges": (len(rows) - len(keys))
        + sum(c - 1 for c in per_key.values() if c > 1)
        + sum(c - 1 for c in per_period.values() if c > 1),
    }


_ACCESS = re.compile(
    r'\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}) [+-]\d{4}\] "(\w+) (\S+)[^"]*" (\d{3})')


def stripe_request_rate(log_text: str, since: datetime, until: datetime) -> dict:
    """Requests per wall-clock second seen by localstripe (its access log) in a window.
    localstripe never answers 429 itself, so the check is the observed rate vs the limit."""
    per_second: Counter[datetime] = Counter()
    statuses: Counter[str] = Counter()
    for m in _ACCESS.finditer(log_text):
        at = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S").replace(tzinfo=UTC)
        if since.replace(microsecond=0) <= at <= until:
            per_second[at] += 1
            statuses[m.group(4)] += 1
    # Full seconds only: the first and last bins are partial.
    full = sorted(per_second)[1:-1]
    return {
        "requests": sum(per_second.values()),
        "max_per_second": max(per_second.values(), default=0),
        "mean_per_second_full": round(sum(per_second[s] for s in full) / len(full), 1)
        if full else 0.0,
        "status_429": statuses.get("429", 0),
        "non_2xx": sum(c for s, c in statuses.items() if not s.startswith("2")),
    }


def stripe_rate_fast(stats0: dict, stats1: dict, since: datetime, until: datetime,
                     limit: float | None) -> dict:
    """The stand-in's own counts between two snapshots: requests answered per wall-clock
    second in the window, 429s, and the share of the limit used in the full seconds."""
    lo, hi = int(since.timestamp()), int(until.timestamp())
    per_second = {int(k): v - stats0["per_second"].get(k, 0)
                  for k, v in stats1["per_second"].items() if lo <= int(k) <= hi}
    full = sorted(per_second)[1:-1]
    mean = sum(per_second[k] for k in full) / len(full) if full else 0.0
    status = {k: v - stats0["statuses"].get(k, 0) for k, v in stats1["statuses"].items()}
    return {
        "requests": sum(per_second.values()), "max_per_second": max(per_second.values(),
                                                                    default=0),
        "mean_per_second_full": round(mean, 1), "status_429": status.get("429", 0),
        "non_2xx": sum(v for k, v in status.items() if not k.startswith("2")),
        "limit_used_pct": round(100 * mean / limit, 1) if limit else None,
    }


async def history_sample(client, ids: list[str]) -> dict:
    """Runs and events of a few workflows' whole chains (continue-as-new followed back)."""
    runs, events, biggest = 0, 0, 0
    for wid in ids:
        run_id = None
        while True:
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            runs, events = runs + 1, events + len(history.events)
            biggest = max(biggest, len(history.events))
            run_id = history.events[0].workflow_execution_started_event_attributes \
                .continued_execution_run_id
            if not run_id:
                break
    return {"workflows": len(ids), "runs_per_workflow": round(runs / len(ids), 2),
            "events_per_run": round(events / runs, 1), "max_events_per_run": biggest}


def plan_interval(period: int) -> tuple[str, int]:
    """The plan's interval for a period of ``period`` seconds: a plan counts at most 1,000
    intervals, so a longer period is rounded up to whole minutes."""
    return ("second", period) if period <= 1000 else ("minute", -(-period // 60))


async def run_scenario(sc: Scenario, n: int, customers: list[str], db_url: str,
                       stripe, period: int | None, expect: float = 4.0,
                       start_rate: float = START_RATE, workers: int = 1,
                       lead_margin: float = LEAD_MARGIN) -> dict:
    # Two Stripe requests per charge: the limiter bounds charges at rate/2 per second.
    expected = min(sc.rate / 2, expect)  # a guess; an overlap of the two bursts is reported
    period = period or max(20, int(1.5 * n / expected) + 10)
    interval, count = plan_interval(period)
    period = count * (60 if interval == "minute" else 1)
    fast = isinstance(stripe, FastStripe)
    if fast:
        stripe.set_limit(sc.stripe_limit)
    server = TemporalServer()
    smtp, smtp_port = start_smtp_sink()
    settings = Settings(database_url=db_url, stripe=stripe_settings(stripe.url, sc.rate),
                        # Every running subscription stays in the worker's cache, as a
                        # deployment sizes it (an evicted run is replayed at its next task).
                        temporal=TemporalSettings(address=server.address,
                                                  max_cached_workflows=max(1000, n)),
                        notifications=NotificationSettings(smtp_port=smtp_port))
    queue = f"bench-{sc.name}"
    module = "workers.main" if sc.kind == "core" else "bench.baseline"
    pool = [Child.start(f"worker-{sc.name}-{k}", [_python(), "-m", module],
                        worker_env(settings, queue)) for k in range(workers)]
    worker = pool[0]
    engine = reader(db_url)
    prefix = f"{sc.name}-"
    try:
        client = await connect(settings)
        await wait_for_pollers(client, queue, worker, count=workers)
        lead = lead_margin + n / start_rate
        t0 = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
        plan = Plan(id="bench", name="bench", amount=AMOUNT, currency="usd",
                    interval=interval, interval_count=count, included_credits=CREDITS)
        started = time.monotonic()
        sem = asyncio.Semaphore(50)

        def workflow_id(i: int) -> str:
            sid = f"{prefix}{i:06d}"
            return f"subscription-{sid}" if sc.kind == "core" else f"baseline-{sid}"

        async def start(i: int, cid: str) -> None:
            sid = f"{prefix}{i:06d}"
            async with sem:
                if sc.kind == "core":
                    await client_ops.start(client, NewSubscription(
                        id=sid, customer_id=cid, plan=plan, start_date=t0), queue)
                else:
                    from bench.baseline import WORKFLOW_TYPE, LoopInput
                    await client.start_workflow(WORKFLOW_TYPE, LoopInput(
                        subscription_id=sid, customer_id=cid, anchor=t0, period_seconds=period,
                        amount=AMOUNT, credits=CREDITS), id=workflow_id(i), task_queue=queue)

        await asyncio.gather(*(start(i, c) for i, c in enumerate(customers[:n])))
        start_seconds = time.monotonic() - started
        late_start = datetime.now(UTC) > t0
        t1 = t0 + timedelta(seconds=period)
        timeout = period + 20 + 4 * n / expected
        first_done, _ = await _wait_done(engine, prefix, period_key(t0), n, t0, timeout, pool)
        overlap = first_done is None or first_done > period
        # CPU used during the renewal burst shows which process is the bottleneck.
        await asyncio.sleep(max(0.0, (t1 - datetime.now(UTC)).total_seconds()))
        stats0 = stripe.stats() if fast else None
        cpu0 = (sum(w.cpu() for w in pool), server.child.cpu(), stripe_cpu(stripe))
        renew_done, renew_charged = await _wait_done(engine, prefix, period_key(t1), n, t1,
                                                     timeout, pool)
        end = datetime.now(UTC)
        cpu = {"workers": round(sum(w.cpu() for w in pool) - cpu0[0], 2),
               "server": round(server.child.cpu() - cpu0[1], 2),
               "stripe": round(stripe_cpu(stripe) - cpu0[2], 2)}
        cpu["engine"] = round(cpu["workers"] + cpu["server"], 2)
        stats1 = stripe.stats() if fast else None
        _, granted = _counts(engine, prefix, period_key(t1))
        memory = {"worker": {"peak_rss_mb": max(w.memory()["peak_rss_mb"] for w in pool),
                             "sum_peak_rss_mb": round(sum(w.memory()["peak_rss_mb"]
                                                          for w in pool), 1)},
                  "server": server.memory(), "stripe": rss_mb(stripe.process.pid)}
        checks = exactly_once(engine, prefix, stripe)
        rate_seen = (stripe_rate_fast(stats0, stats1, t1, end, sc.stripe_limit) if fast
                     else stripe_request_rate(_log(stripe), t1, end))
        sample = [workflow_id(i) for i in range(0, n, max(1, n // 10))][:10]
        return {
            "scenario": sc.name, "kind": sc.kind, "n": n, "workers": workers,
            "stripe": "fast" if fast else "localstripe", "period_s": period,
            "worker_cache": settings.temporal.max_cached_workflows,
            "stripe_limit_per_s": sc.stripe_limit, "worker_limiter_per_s": sc.rate,
            "start_seconds": round(start_seconds, 1),
            "late_start": late_start,
            "activation_burst_s": _r(first_done),
            "activation_per_s": _r(n / first_done) if first_done else None,
            "activation_overlapped_renewal": overlap,
            "renewal_burst_s": _r(renew_done),
            "renewals_per_s": _r(n / renew_done) if renew_done else None,
            "renewal_charges_done_s": _r(renew_charged),
            "complete": renew_done is not None, "missing_renewals": n - min(granted, n),
            "renewal_cpu_seconds": cpu,
            "cpu_ms_per_renewal": {k: round(1000 * v / n, 1) for k, v in cpu.items()},
            "memory_mb": memory, "exactly_once": checks, "stripe_requests": rate_seen,
            "history": await history_sample(client, sample),
        }
    finally:
        for w in pool:
            w.stop()
        server.stop()
        smtp.stop()


def stripe_cpu(server) -> float:
    return cpu_seconds(server.process.pid)


def compare_to_loop(results: list[dict]) -> None:
    """Each result's ratios to the plain loop measured in the same run (in place)."""
    loop = next((r for r in results if r["kind"] == "baseline" and r["renewals_per_s"]), None)
    for r in results:
        if loop is None or not r["renewals_per_s"]:
            r["vs_loop"] = None
            continue
        r["vs_loop"] = {
            "renewals_per_s": round(r["renewals_per_s"] / loop["renewals_per_s"], 2),
            "engine_cpu_per_renewal": round(r["cpu_ms_per_renewal"]["engine"]
                                            / loop["cpu_ms_per_renewal"]["engine"], 2)}


async def run_burst(n: int, scenarios: list[Scenario], db_url: str,
                    period: int | None = None, expect: float = 4.0,
                    start_rate: float = START_RATE, workers: int = 1,
                    stripe_kind: str = "fast", lead_margin: float = LEAD_MARGIN) -> list[dict]:
    """Migrate, start Stripe, create N customers once, then run each scenario."""
    import json
    import sys

    from bench.fast_stripe import start_fast_stripe
    from bench.stack import start_localstripe
    from store.migrate import upgrade

    upgrade(db_url)
    stripe = start_fast_stripe() if stripe_kind == "fast" else start_localstripe()
    results = []
    try:
        customers = await asyncio.to_thread(make_customers, db_url, stripe.url, n)
        for sc in scenarios:
            print(f"[burst] {sc.name}: N={n}, {workers} worker(s) ...", file=sys.stderr,
                  flush=True)
            result = await run_scenario(sc, n, customers, db_url, stripe, period, expect,
                                        start_rate, workers, lead_margin)
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
    finally:
        stripe.stop()
    compare_to_loop(results)
    return results


async def wait_for_pollers(client, queue: str, worker: Child, timeout: float = 120.0,
                           count: int = 1) -> None:
    """T0 is chosen once the worker polls: a workflow whose first task runs after T0 would
    start late (start = max(start_date, now)) and fall out of the burst."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited ({worker.process.returncode}):\n{worker.tail(8000)}")
        resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        if len({p.identity for p in resp.pollers}) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the worker never polled its task queue")


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _log(server) -> str:
    """Read the access log through a fresh file description: seeking the shared one would
    move localstripe's own write offset."""
    with open(f"/proc/self/fd/{server.log.fileno()}", "rb") as f:
        return f.read().decode(errors="replace")


def _python() -> str:
    import sys
    return sys.executable
