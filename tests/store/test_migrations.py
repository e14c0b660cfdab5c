"""The alembic migrations create exactly the schema the models describe, for every component
(ledger, payments, events, accounts, webhooks, notifications), on SQLite and PostgreSQL: a model
change without its migration fails here. Upgrades started at once by several processes
serialize on the migration lock instead of racing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from config.settings import REPO_ROOT
from store.engine import get_engine
from store.metadata import all_metadata
from store.migrate import alembic_config
from tests.conftest import fresh_postgres_database


def test_migrated_schema_equals_the_models(db_url):
    engine = get_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, all_metadata())
    assert diffs == []
    tables = set(inspect(engine).get_table_names())
    assert set(all_metadata().tables) <= tables


# Waits for "go" on stdin after its imports, so every process upgrades at the same moment.
_UPGRADER = """
import sys
from store.migrate import upgrade
print("ready", flush=True)
sys.stdin.readline()
upgrade(sys.argv[1])
print("upgraded", flush=True)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def test_concurrent_upgrades_serialize_and_reach_heads(empty_db_url):
    """Worker, API and migrate job starting together on a fresh database: each process runs
    alembic upgrade at once; all succeed (the later ones wait for the lock and find nothing to
    do) and the schema ends at every branch's head, with each revision applied once."""
    procs = [subprocess.Popen([sys.executable, "-c", _UPGRADER, empty_db_url], cwd=REPO_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stdout.read()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * 3, outputs
    assert all(o.strip().endswith("upgraded") for o in outputs), outputs

    engine = get_engine(empty_db_url)
    heads = set(ScriptDirectory.from_config(alembic_config(empty_db_url)).get_heads())
    with engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == heads
        versions = [row[0] for row in conn.exec_driver_sql(
            "SELECT version_num FROM alembic_version")]
    assert sorted(versions) == sorted(heads)
    assert set(all_metadata().tables) <= set(inspect(engine).get_table_names())
