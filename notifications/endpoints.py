"""Webhook endpoints of an organization. The signing secret is returned when the endpoint is
created and never listed again (like an API key)."""

from __future__ import annotations

import secrets

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.ids import new_id
from notifications.models import WebhookEndpoint
from store.engine import session_scope


def create_endpoint(engine: Engine, organization_id: str, url: str,
                    description: str | None = None) -> WebhookEndpoint:
    with session_scope(engine) as session:
        endpoint = WebhookEndpoint(id=new_id("we"), organization_id=organization_id, url=url,
                                   secret="whsec_" + secrets.token_urlsafe(32),
                                   description=description)
        session.add(endpoint)
    return endpoint


def list_endpoints(engine: Engine, organization_id: str) -> list[WebhookEndpoint]:
    with Session(engine) as session:
        return list(session.exec(select(WebhookEndpoint).where(
            WebhookEndpoint.organization_id == organization_id)
            .order_by(WebhookEndpoint.created, WebhookEndpoint.id)).all())


def get_endpoint(engine: Engine, endpoint_id: str) -> WebhookEndpoint | None:
    with Session(engine) as session:
        return session.get(WebhookEndpoint, endpoint_id)


def delete_endpoint(engine: Engine, endpoint_id: str) -> bool:
    """Queued deliveries to a deleted endpoint are skipped by the dispatcher."""
    with session_scope(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None:
            return False
        session.delete(endpoint)
    return True
