"""accounts: the 0004_accounts migration matches the models, keys are stored hashed only, and
authentication follows revocation and organization deletion. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from accounts import keys
from accounts.models import ApiKey, Customer, Organization, Role
from accounts.organizations import mark_deleted
from store.engine import get_engine
from store.metadata import all_metadata

ACCOUNT_TABLES = {m.__tablename__ for m in (Organization, ApiKey, Customer)}


def _table_of(diff) -> str | None:
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
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, all_metadata())
    assert [d for d in diffs if _table_of(d) in ACCOUNT_TABLES] == []
    assert ACCOUNT_TABLES <= set(inspect(get_engine(db_url)).get_table_names())


def test_only_a_hash_of_the_key_is_stored(db_url):
    engine = get_engine(db_url)
    org, raw = keys.create_organization_with_owner(engine, "Acme")
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(text("SELECT * FROM api_key"))]
    assert stored and all(raw not in str(value) for row in stored for value in row)
    with Session(engine) as session:
        (key,) = session.exec(select(ApiKey)).all()
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(key.prefix) and len(key.prefix) < len(raw) // 3
    assert keys.authenticate(engine, raw) == keys.Principal(key.id, Role.OWNER, org.id)


def test_unknown_revoked_and_deleted_keys_do_not_authenticate(db_url):
    engine = get_engine(db_url)
    org, owner = keys.create_organization_with_owner(engine, "Acme")
    _, member = keys.create_api_key(engine, org.id, Role.MEMBER)
    _, operator = keys.create_operator_key(engine)
    assert keys.authenticate(engine, owner + "x") is None
    assert keys.authenticate(engine, member).role == Role.MEMBER

    mark_deleted(engine, org.id)
    assert keys.authenticate(engine, owner) is None
    assert keys.authenticate(engine, member) is None
    principal = keys.authenticate(engine, operator)
    assert principal.is_operator and principal.organization_id is None
    assert principal.can_see(org.id)
