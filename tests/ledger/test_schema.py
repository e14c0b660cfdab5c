"""The hand-written 0001_ledger migration creates exactly what ledger.models declares."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ledger.models import CreditAccount, CreditAllocation, CreditEntry
from store.engine import get_engine
from store.metadata import all_metadata
from store.migrate import alembic_config, upgrade

LEDGER_TABLES = {m.__tablename__ for m in (CreditAccount, CreditEntry, CreditAllocation)}


def _table_of(diff) -> str | None:
    """The table a compare_metadata diff is about (diffs are tuples, or lists of them)."""
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
    metadata = all_metadata()
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    ledger_diffs = [d for d in diffs if _table_of(d) in LEDGER_TABLES]
    assert ledger_diffs == []


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
