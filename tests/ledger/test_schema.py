"""The hand-written 0001_ledger migration creates exactly what ledger.models declares."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from ledger.models import CreditAccount, CreditAllocation, CreditEntry
from store.engine import get_engine
from store.migrate import alembic_config, upgrade

LEDGER_TABLES = {m.__tablename__ for m in (CreditAccount, CreditEntry, CreditAllocation)}


def test_ledger_tables_exist(db_url):
    names = set(inspect(get_engine(db_url)).get_table_names())
    assert LEDGER_TABLES <= names


def test_ledger_branch_downgrades_and_upgrades_alone(db_url):
    engine = get_engine(db_url)
    cfg = alembic_config(db_url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "ledger@base")
    assert not LEDGER_TABLES & set(inspect(engine).get_table_names())
    upgrade(db_url)
    assert LEDGER_TABLES <= set(inspect(engine).get_table_names())
