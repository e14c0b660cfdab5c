"""The alembic migrations create exactly the schema the models describe, for every component
(ledger, payments, events, accounts, webhooks, notifications), on SQLite and PostgreSQL: a model
change without its migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from store.engine import get_engine
from store.metadata import all_metadata


def test_migrated_schema_equals_the_models(db_url):
    engine = get_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, all_metadata())
    assert diffs == []
    tables = set(inspect(engine).get_table_names())
    assert set(all_metadata().tables) <= tables
