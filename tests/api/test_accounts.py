"""accounts: the 0004_accounts migration matches the models, keys are stored hashed only, and
authentication follows revocation and organization deletion. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlmodel import Session, select

from accounts import keys
from accounts.models import ApiKey, Role
from accounts.organizations import mark_deleted
from store.engine import get_engine



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
