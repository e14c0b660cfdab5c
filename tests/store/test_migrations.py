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


def test_events_stored_before_0009_get_their_organization(db_url):
    """0009_event_organization fills the new column from the read model (the customer when a
    subscription has no row there), so GET /v1/events lists events stored before it."""
    from alembic import command

    config = alembic_config(db_url)
    command.downgrade(config, "0008_view_facts")
    engine = get_engine(db_url)
    event = ("INSERT INTO subscription_event (id, subscription_id, customer_id, seq, type, "
             "created, data, previous_attributes) VALUES ('evt_{s}_1', '{s}', 'cus_{s}', 1, "
             "'customer.subscription.created', '2026-01-01 00:00:00', '{{}}', '{{}}')")
    with engine.begin() as conn:
        conn.exec_driver_sql(event.format(s="sub_a"))
        conn.exec_driver_sql(event.format(s="sub_b"))
        conn.exec_driver_sql(
            "INSERT INTO subscription_view (id, organization_id, customer_id, plan_id, status, "
            "current_period_start, current_period_end, cancel_at_period_end, last_event_seq) "
            "VALUES ('sub_a', 'org_a', 'cus_sub_a', 'pro', 'active', '2026-01-01 00:00:00', "
            "'2026-02-01 00:00:00', false, 1)")
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        rows = dict(conn.exec_driver_sql(
            "SELECT id, organization_id FROM subscription_event").fetchall())
    assert rows == {"evt_sub_a_1": "org_a", "evt_sub_b_1": "cus_sub_b"}
