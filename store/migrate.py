"""Bring a database to the newest schema with alembic (used by the worker, the API and tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from config.settings import REPO_ROOT
from store.engine import get_engine


def alembic_config(url: str) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str) -> None:
    """Apply every branch's revisions up to its head; idempotent."""
    cfg = alembic_config(url)
    with get_engine(url).begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")
