"""Organization lookups and the final step of D22 deletion (the checks that nothing is
outstanding live with the API, which can see subscriptions, the ledger and payments)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from accounts.models import Organization
from store.engine import session_scope
from store.types import utcnow


def get_organization(engine: Engine, organization_id: str) -> Organization | None:
    """A live organization; deleted ones are gone for every caller."""
    with Session(engine) as session:
        org = session.get(Organization, organization_id)
    return org if org is not None and org.deleted_at is None else None


def mark_deleted(engine: Engine, organization_id: str, at: datetime | None = None) -> Organization:
    """Soft delete: rows stay for the audit trail, but every key of the organization stops
    working at once (``keys.authenticate`` checks ``deleted_at``)."""
    with session_scope(engine) as session:
        org = session.get(Organization, organization_id)
        if org is None:
            raise LookupError(organization_id)
        org.deleted_at = org.deleted_at or at or utcnow()
        session.add(org)
    return org
