"""The deployment's Stripe budget in the database, on SQLite and PostgreSQL: slots spaced at the
rate across bucket objects (one per process in a deployment), threads and real processes.

Deterministic where it can be: an injected clock that never moves, so every wait comes from the
reservation arithmetic alone. The real-process test runs on the database's clock and asserts
only a lower bound (a loaded machine can make requests later, never earlier)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlmodel import Session, select

from api.app import create_app
from config.settings import REPO_ROOT, Settings
from payments.gateway import StripeGateway
from payments.models import StripeRateLimit
from payments.rate_limit import TokenBucket
from payments.shared_rate_limit import DatabaseBucket, account_id
from store.engine import get_engine
from tests.fakes_stripe import stripe_settings
from tests.payments.test_rate_limit import reserve_concurrently
from workers.main import build_activities

KEY = "sk_test_shared_budget"


class FrozenClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_buckets_of_several_processes_get_distinct_slots_in_order(db_url):
    engine, clock = get_engine(db_url), FrozenClock()
    # A bucket object per thread, as each worker or API process has its own.
    waits = reserve_concurrently(lambda: DatabaseBucket(engine, KEY, rate=50, clock=clock),
                                 threads=4, each=10)
    assert all(mine == sorted(mine) for mine in waits)  # a caller's own slots come in order
    assert sorted(sum(waits, [])) == pytest.approx([k / 50 for k in range(40)])


def test_an_idle_account_sends_at_once_and_saves_no_burst(db_url):
    clock = FrozenClock()
    bucket = DatabaseBucket(get_engine(db_url), KEY, rate=10, clock=clock)
    assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 0.1])
    clock.now += 0.15  # the second slot has passed, the third is 0.05 s away
    assert bucket.reserve() == pytest.approx(0.05)
    clock.now += 100  # idle for long: nothing is saved up beyond one request
    assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 0.1])


def test_accounts_are_separate_and_rows_never_hold_the_key(db_url):
    engine = get_engine(db_url)
    clock = FrozenClock()
    a, b = (DatabaseBucket(engine, key, rate=1, clock=clock) for key in ("sk_a", "sk_b"))
    assert [a.reserve(), b.reserve(), a.reserve()] == [0.0, 0.0, 1.0]
    with Session(engine) as session:
        accounts = set(session.exec(select(StripeRateLimit.account)).all())
    assert accounts == {account_id("sk_a"), account_id("sk_b")}
    assert not any("sk_" in account for account in accounts)


def test_acquire_sleeps_until_its_slot(sqlite_url):
    slept: list[float] = []
    bucket = DatabaseBucket(get_engine(sqlite_url), KEY, rate=4, clock=FrozenClock(),
                            sleep=slept.append)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.25, 0.5]
    assert slept == [0.25, 0.5]
    with pytest.raises(ValueError):
        DatabaseBucket(bucket.engine, KEY, rate=0)


_CHILD = """
import sys, time
from payments.shared_rate_limit import DatabaseBucket
from store.engine import get_engine
url, rate, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
bucket = DatabaseBucket(get_engine(url), "sk_test_processes", rate)
get_engine(url).connect().close()
print("ready", flush=True)
sys.stdin.readline()
started = time.time()
for _ in range(n):
    bucket.acquire()
print(started, time.time(), flush=True)
"""


def test_processes_share_one_budget_on_the_database_clock(db_url):
    """Three processes, released together, 10 requests each at 20/s: with a bucket per
    process they would finish in 0.45 s; sharing one, the 30 requests span at least 29/20 s."""
    rate, per_process, processes = 20.0, 10, 3
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, db_url, str(rate),
                                  str(per_process)], cwd=REPO_ROOT, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                for _ in range(processes)]
    try:
        assert [c.stdout.readline().strip() for c in children] == ["ready"] * processes
        for c in children:
            c.stdin.write("go\n")
            c.stdin.flush()
        spans = [tuple(map(float, c.stdout.readline().split())) for c in children]
        assert [c.wait(60) for c in children] == [0] * processes
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
    first_start = min(start for start, _ in spans)
    last_end = max(end for _, end in spans)
    assert last_end - first_start >= (processes * per_process - 1) / rate - 0.01, spans


def test_the_worker_and_the_api_draw_from_the_deployment_budget(sqlite_url):
    settings = Settings(database_url=sqlite_url, stripe=stripe_settings("http://stripe"))
    engine = get_engine(sqlite_url)
    charge = build_activities(settings, engine)[0]
    buckets = [charge.__self__.service.gateway.bucket,
               create_app(settings).state.payments.gateway.bucket]
    assert all(isinstance(b, DatabaseBucket) and b.engine is engine for b in buckets)
    process = settings.stripe.model_copy(update={"rate_limit_scope": "process"})
    assert isinstance(StripeGateway(process, engine=engine).bucket, TokenBucket)
    assert isinstance(StripeGateway(settings.stripe).bucket, TokenBucket)  # no engine given
