"""Customer portal sessions: a link that opens once, then a browser session for one customer.

``open_session`` issues a random link secret (only its hash is stored, like an API key);
``redeem`` spends it in one conditional UPDATE (unused and unexpired), so of two requests with
the same link exactly one gets a session; ``current`` finds a live session by its cookie.
The CSRF token is derived from the session secret, so nothing else is stored and a page that
does not hold the cookie cannot compute it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.ids import new_id
from accounts.models import Customer, PortalSession
from store.engine import session_scope


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The form token of a session: only a page that holds the cookie's secret knows it."""
    return hashlib.sha256(b"portal-csrf:" + session_secret.encode()).hexdigest()


def csrf_valid(session_secret: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(csrf_token(session_secret), submitted)


@dataclass(frozen=True)
class Opened:
    session: PortalSession
    link_secret: str  # shown once, in the link; never stored


@dataclass(frozen=True)
class Redeemed:
    session: PortalSession
    session_secret: str  # goes into the cookie; never stored


def open_session(engine: Engine, customer: Customer, return_url: str, now: datetime,
                 link_ttl: timedelta) -> Opened:
    secret = secrets.token_urlsafe(32)
    row = PortalSession(id=new_id("bps"), organization_id=customer.organization_id,
                        customer_id=customer.id, return_url=return_url, created=now,
                        link_hash=_hash(secret), link_expires_at=now + link_ttl)
    with session_scope(engine) as session:
        session.add(row)
    return Opened(row, secret)


def find_link(engine: Engine, link_secret: str) -> PortalSession | None:
    """The session a link belongs to, used or not (to say where to go back to)."""
    with Session(engine) as session:
        return session.exec(select(PortalSession)
                            .where(PortalSession.link_hash == _hash(link_secret))).first()


def redeem(engine: Engine, link_secret: str, now: datetime,
           session_ttl: timedelta) -> Redeemed | None:
    """Spend the link once: None when it is unknown, already used or expired."""
    secret = secrets.token_urlsafe(32)
    link_hash = _hash(link_secret)
    with session_scope(engine) as session:
        spent = session.exec(
            update(PortalSession)
            .where(PortalSession.link_hash == link_hash, PortalSession.used_at.is_(None),
                   PortalSession.link_expires_at > now)
            .values(used_at=now, session_hash=_hash(secret),
                    session_expires_at=now + session_ttl))
        if spent.rowcount != 1:
            return None
    row = find_link(engine, link_secret)
    assert row is not None
    return Redeemed(row, secret)


def current(engine: Engine, session_secret: str, now: datetime) -> PortalSession | None:
    """The live session of a cookie; None when unknown or expired."""
    with Session(engine) as session:
        row = session.exec(select(PortalSession)
                           .where(PortalSession.session_hash == _hash(session_secret))).first()
    if row is None or row.session_expires_at is None or row.session_expires_at <= now:
        return None
    return row
