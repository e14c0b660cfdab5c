"""API keys: issue, hash, authenticate.

A raw key is shown once, when it is created; only its SHA-256 hash is stored, so looking a key up
is one indexed equality on the hash (keys are long random strings: a fast hash is enough, no
salt or slow KDF is needed as it would be for passwords). Operators bootstrap the first key of
an organization with ``create_organization_with_owner`` (also ``python -m accounts``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.ids import new_id
from accounts.models import ApiKey, Organization, Role
from domain.model import Actor
from store.engine import session_scope

KEY_PREFIX = "sk_"
PREFIX_SHOWN = 12  # "sk_" + 9 characters: enough to tell keys apart, useless to an attacker


@dataclass(frozen=True)
class Principal:
    """Who is calling: one key, its role and (unless an operator) its organization."""

    key_id: str
    role: Role
    organization_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR

    def can_see(self, organization_id: str) -> bool:
        return self.is_operator or self.organization_id == organization_id

    @property
    def actor(self) -> Actor:
        """How D8 events name the requester: the key, never the raw secret."""
        return Actor(kind="operator" if self.is_operator else "api_key", id=self.key_id)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _issue(session: Session, organization_id: str | None, role: Role,
           name: str | None) -> tuple[ApiKey, str]:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id("key"), organization_id=organization_id, role=role.value, name=name,
                 prefix=raw[:PREFIX_SHOWN], key_hash=hash_key(raw))
    session.add(key)
    return key, raw


def create_organization_with_owner(engine: Engine, name: str) -> tuple[Organization, str]:
    """A new organization and its first owner key (the raw key is returned once, never stored)."""
    with session_scope(engine) as session:
        org = Organization(id=new_id("org"), name=name)
        session.add(org)
        session.flush()
        _, raw = _issue(session, org.id, Role.OWNER, "owner (bootstrap)")
    return org, raw


def create_api_key(engine: Engine, organization_id: str, role: Role,
                   name: str | None = None) -> tuple[ApiKey, str]:
    if role == Role.OPERATOR:
        raise ValueError("operator keys belong to no organization; use create_operator_key")
    with session_scope(engine) as session:
        org = session.get(Organization, organization_id)
        if org is None or org.deleted_at is not None:
            raise LookupError(f"no such organization: {organization_id}")
        return _issue(session, organization_id, role, name)


def create_operator_key(engine: Engine, name: str | None = None) -> tuple[ApiKey, str]:
    """A key that acts on every organization (support staff, the operator CLI)."""
    with session_scope(engine) as session:
        return _issue(session, None, Role.OPERATOR, name or "operator")


def authenticate(engine: Engine, raw_key: str) -> Principal | None:
    """The principal of a live key; None for unknown or revoked keys and deleted organizations."""
    with Session(engine) as session:
        row = session.exec(
            select(ApiKey, Organization)
            .join(Organization, ApiKey.organization_id == Organization.id, isouter=True)
            .where(ApiKey.key_hash == hash_key(raw_key))
        ).first()
    if row is None:
        return None
    key, org = row
    if key.revoked_at is not None:
        return None
    role = Role(key.role)
    if role != Role.OPERATOR and (org is None or org.deleted_at is not None):
        return None
    return Principal(key_id=key.id, role=role, organization_id=key.organization_id)
