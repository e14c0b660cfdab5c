"""Bring a database to the newest schema with alembic (the migrate job, the worker and the API
at start-up unless ``migrate_on_start`` is off, and tests).

Upgrades serialize on a lock held for the whole migration transaction: on PostgreSQL a
transaction-level advisory lock with a fixed key, on SQLite ``BEGIN IMMEDIATE`` (the database's
one write lock, taken before alembic reads the current version). Of several processes starting
at once, one migrates; the others wait, then find the schema at heads and do nothing.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from config.settings import REPO_ROOT
from store.engine import get_engine

# pg_advisory_xact_lock key of schema upgrades (any fixed 64-bit number no other lock uses).
MIGRATION_LOCK_KEY = 0x5B5C_0001


def alembic_config(url: str) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def _lock(connection: Connection) -> None:
    """Wait for the migration lock; released when the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    elif connection.dialect.name == "sqlite":
        # pysqlite opens transactions lazily (not before DDL or reads); take the write lock now.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(url: str) -> None:
    """Apply every branch's revisions up to its head; idempotent, and safe to run at once from
    several processes."""
    cfg = alembic_config(url)
    with get_engine(url).begin() as connection:
        _lock(connection)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")
