"""One Stripe request budget for the whole deployment: the token bucket kept in the database.

Stripe limits requests per account, not per process. With a bucket per process
(payments.rate_limit) N workers and the API would send (N + 1) x the rate. Here every process
takes its slot from one row per Stripe account (``stripe_rate_limit``, keyed by a hash of the
API key, never the key itself) in one atomic statement:

    UPDATE stripe_rate_limit SET next_free = max(next_free, now) + 1/rate
    WHERE account = :account RETURNING next_free, now

The row lock (PostgreSQL) or the database write lock (SQLite) serialises reservations, so every
caller gets its own slot, in arrival order; it then sleeps until that slot outside any
transaction. On SQLite the callers of one process first queue on its writer lock
(store.engine.writing): SQLite's busy handler would make them sleep up to 100 ms between
tries, and a reservation that late sends its request late. ``now`` is the database's clock,
the one clock all processes share (tests inject their own). The spacing is the process
bucket's with burst 1: at most rate + 1 requests in any one-second window, now for the whole
deployment. The price is one short write transaction per Stripe request.

Why not Temporal's ``max_task_queue_activities_per_second`` on a Stripe task queue: it limits
activity *starts*, while one activity makes several Stripe requests (a charge creates and
confirms an intent, a retry retrieves it first, closing cancels), and the API's own Stripe calls
(customers, payment methods) are not activities at all.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import BigInteger, case, cast, extract, func, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from payments.models import StripeRateLimit
from payments.rate_limit import Bucket
from store.engine import writing

MICROS = 1_000_000
_TABLE = StripeRateLimit.__table__
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def account_id(api_key: str) -> str:
    """The row's key: names the Stripe account without storing its secret."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def _database_now(engine: Engine) -> ColumnElement:
    """Now, in microseconds since the Unix epoch, on the database's clock."""
    if engine.dialect.name == "sqlite":
        days = func.julianday("now") - _UNIX_EPOCH_JULIAN_DAY
        return cast(days * 86_400 * MICROS, BigInteger)
    # clock_timestamp(), not now(): the time the row is updated, after any wait for its lock.
    return cast(extract("epoch", func.clock_timestamp()) * MICROS, BigInteger)


class DatabaseBucket(Bucket):
    """``rate`` requests per second for every process using this database and API key.
    ``clock`` (seconds) replaces the database's clock in tests."""

    def __init__(self, engine: Engine, api_key: str, rate: float, *,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.engine = engine
        self.account = account_id(api_key)
        self.rate = float(rate)
        self._interval_us = max(1, round(MICROS / rate))
        self._clock = clock
        self._sleep = sleep

    def reserve(self) -> float:
        """Take the next free slot of the account; return the seconds until it comes."""
        with writing(self.engine), self.engine.begin() as conn:
            row = self._take(conn)
            if row is None:  # the account's first request
                insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
                conn.execute(insert(_TABLE).values(account=self.account, next_free_us=0)
                             .on_conflict_do_nothing(index_elements=["account"]))
                row = self._take(conn)
        next_free_us, now_us = row
        return max(0, next_free_us - self._interval_us - now_us) / MICROS

    def _take(self, conn: Connection):
        now = (_database_now(self.engine) if self._clock is None
               else literal(round(self._clock() * MICROS), BigInteger))
        column = _TABLE.c.next_free_us
        later = case((column > now, column), else_=now)
        return conn.execute(
            update(_TABLE).where(_TABLE.c.account == self.account)
            .values(next_free_us=later + self._interval_us)
            .returning(column, now)).first()
