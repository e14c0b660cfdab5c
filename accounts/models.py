"""Tables of the accounts component (migration ``0004_accounts``).

An API key is stored only as a SHA-256 hash: a leaked database does not leak working keys. The
short ``prefix`` is kept in clear so people can tell their keys apart. Operator keys have no
organization: they act on any of them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


class Role(StrEnum):
    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    MEMBER = "member"
    OPERATOR = "operator"  # not bound to an organization


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    created: datetime = Field(default_factory=utcnow,
                              sa_column=Column(UTCDateTime(), nullable=False))
    # D22: set once nothing is outstanding; the organization's keys stop working.
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=64)
    organization_id: str | None = Field(
        default=None,
        sa_column=Column(String(64), ForeignKey("organization.id"), nullable=True, index=True))
    role: str = Field(max_length=32)
    name: str | None = Field(default=None, max_length=200)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created: datetime = Field(default_factory=utcnow,
                              sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: str = Field(primary_key=True, max_length=64)
    organization_id: str = Field(
        sa_column=Column(String(64), ForeignKey("organization.id"), nullable=False, index=True))
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    created: datetime = Field(default_factory=utcnow,
                              sa_column=Column(UTCDateTime(), nullable=False))


class PortalSession(SQLModel, table=True):
    """A customer portal session (migration ``0009_portal_sessions``): a link that opens once
    (``link_hash``, until ``link_expires_at``), then the browser session it became
    (``session_hash``, until ``session_expires_at``). Only SHA-256 hashes of both secrets
    are stored, as for API keys."""

    __tablename__ = "portal_session"

    id: str = Field(primary_key=True, max_length=64)
    organization_id: str = Field(
        sa_column=Column(String(64), ForeignKey("organization.id"), nullable=False))
    customer_id: str = Field(
        sa_column=Column(String(64), ForeignKey("customer.id"), nullable=False, index=True))
    return_url: str = Field(max_length=2048)
    created: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    link_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    link_expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    session_hash: str | None = Field(default=None,
                                     sa_column=Column(String(64), nullable=True, unique=True))
    session_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
