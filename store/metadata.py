"""The one place that knows every table module, so alembic and tests see the whole schema."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData
from sqlmodel import SQLModel

MODEL_MODULES = ("ledger.models", "payments.models", "eventlog.models", "accounts.models",
                 "notifications.models", "webhooks.models", "invoices.models")


def all_metadata() -> MetaData:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a component not written yet
            if exc.name != name:
                raise
    return SQLModel.metadata
