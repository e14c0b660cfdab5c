"""The hand-written 0002_payments migration creates exactly what payments.models declares."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from payments.models import ChargeAttempt, PendingCharge, Refund, StripeCustomer
from store.engine import get_engine
from store.migrate import alembic_config, upgrade

PAYMENT_TABLES = {m.__tablename__ for m in (StripeCustomer, ChargeAttempt, Refund, PendingCharge)}


def test_payments_branch_downgrades_and_upgrades_alone(db_url):
    engine = get_engine(db_url)
    assert PAYMENT_TABLES <= set(inspect(engine).get_table_names())
    cfg = alembic_config(db_url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "payments@base")
    assert not PAYMENT_TABLES & set(inspect(engine).get_table_names())
    upgrade(db_url)
    assert PAYMENT_TABLES <= set(inspect(engine).get_table_names())
