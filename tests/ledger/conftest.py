"""Ledger fixtures: a Ledger per policy on the migrated database of ``db_url`` (SQLite and
PostgreSQL), and small builders for the workflow's activity inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from activities.types import CreditGrant, CreditPeriodChange
from config.settings import CreditSettings
from ledger.service import Ledger
from store.engine import get_engine

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def grant(amount: int, start: datetime, end: datetime, *, customer: str = "cus_1",
          subscription: str = "sub_1", period: str | None = None) -> CreditGrant:
    period = period or start.strftime("%Y%m%dT%H%M%SZ")
    return CreditGrant(idempotency_key=f"{subscription}:{period}:grant", customer_id=customer,
                       subscription_id=subscription, period_key=period, amount=amount,
                       period_start=start, period_end=end)


def change(key: str, at: datetime, *, customer: str = "cus_1", subscription: str = "sub_1",
           period: str = "p") -> CreditPeriodChange:
    return CreditPeriodChange(idempotency_key=key, customer_id=customer,
                              subscription_id=subscription, period_key=period, at=at)


def forfeit_of(g: CreditGrant, at: datetime | None = None) -> CreditPeriodChange:
    return change(f"{g.subscription_id}:{g.period_key}:forfeit", at or g.period_end,
                  customer=g.customer_id, subscription=g.subscription_id, period=g.period_key)


@pytest.fixture
def make_ledger(db_url) -> Callable[..., Ledger]:
    """Ledger(engine, CreditSettings(**overrides)) on the test database."""
    engine = get_engine(db_url)
    return lambda **settings: Ledger(engine, CreditSettings(**settings))


@pytest.fixture
def ledger(make_ledger) -> Ledger:
    return make_ledger()
