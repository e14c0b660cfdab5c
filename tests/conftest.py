"""Shared fixtures: databases (SQLite file and a fresh PostgreSQL database), migrated with alembic;
``env``, a time-skipping server of the test (the testing kit's ``subscription_env``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from store.engine import get_engine
from store.migrate import upgrade
from subscription_testing.plugin import copy_sqlite

# The testing kit's fixtures (a no-op where its entry point already loaded it), the suite's name
# for its localstripe, and pytester (tests/testing_kit runs the README's example in a session).
pytest_plugins = ["subscription_testing.plugin", "tests.fakes_stripe", "pytester"]

POSTGRES_ADMIN_URL = os.environ.get(
    "SUBS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}"


@pytest.fixture
def sqlite_url(tmp_path, subscription_migrated_sqlite) -> str:
    """A migrated SQLite database of this test: a copy of the one migrated once per session."""
    return copy_sqlite(subscription_migrated_sqlite, tmp_path / "test.db")


@contextmanager
def fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database, empty or a copy of ``template`` (skipped when PostgreSQL is
    not running, except in CI), dropped afterwards."""
    reason = _postgres_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    import psycopg

    name = f"subs_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template
                                                    else ""))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        get_engine.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """The name of a PostgreSQL database migrated once per session (per xdist worker), the
    template of each test's database: CREATE DATABASE ... TEMPLATE copies it in about 0.06 s,
    where alembic takes about 0.45 s."""
    with fresh_postgres_database() as url:
        upgrade(url)
        get_engine(url).dispose()  # a template must have no open connection while copied
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def postgres_url(migrated_postgres) -> Iterator[str]:
    with fresh_postgres_database(template=migrated_postgres) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def env(subscription_env):
    """A time-skipping Temporal server of this test, search attributes registered."""
    return subscription_env
