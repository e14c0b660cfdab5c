"""The hand-written 0002_payments migration creates exactly what payments.models declares."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from payments.models import ChargeAttempt, PendingCharge, Refund, StripeCustomer
from store.engine import get_engine
from store.metadata import all_metadata
from store.migrate import alembic_config, upgrade

PAYMENT_TABLES = {m.__tablename__ for m in (StripeCustomer, ChargeAttempt, Refund, PendingCharge)}


def _table_of(diff) -> str | None:
    if isinstance(diff, list):
        return _table_of(diff[0])
    kind, *rest = diff
    if kind.endswith("_table"):
        return rest[0].name
    if kind.endswith(("_index", "_constraint", "_fk")):
        return rest[0].table.name
    if kind.startswith(("add_column", "remove_column", "modify_")):
        return rest[1]
    return None


def test_migration_matches_models(db_url):
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, all_metadata())
    assert [d for d in diffs if _table_of(d) in PAYMENT_TABLES] == []


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
