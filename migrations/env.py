"""Alembic environment. Each component owns an independent branch of revisions
(ledger, payments, accounts, ...): upgrade to ``heads`` applies them all."""

from __future__ import annotations

from alembic import context

from config.settings import get_settings
from store.engine import get_engine
from store.metadata import all_metadata

config = context.config
target_metadata = all_metadata()


def _url() -> str:
    return config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine(_url()).connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
