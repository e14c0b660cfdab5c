"""/v1/organizations: read one, and delete it once nothing is outstanding (D22)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from accounts.customers import customer_ids
from accounts.organizations import mark_deleted
from api import billing
from api.deps import EngineDep, LedgerDep, OwnerDep, PaymentsDep, ReaderDep
from api.problems import ApiProblem, problem_responses
from api.schemas.accounts import OrganizationResource
from api.scope import visible_organization
from domain.model import Status
from eventlog import store as eventlog
from eventlog.models import SubscriptionView

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])

OrganizationId = Annotated[str, Path(max_length=64, examples=["org_Q1w2E3r4T5y6U7i8"])]
_PAGE = 100


def _subscriptions(engine, organization_id: str) -> list[SubscriptionView]:
    views, after = [], None
    while True:
        page = eventlog.list_views(engine, organization_id, limit=_PAGE, starting_after=after)
        views += page
        if len(page) < _PAGE:
            return views
        after = page[-1].id


def _outstanding(engine, ledger, payments, organization_id: str) -> dict[str, list[str]]:
    """D22: live subscriptions (scheduled ones included: work still to come), open charges
    (pending items an ended subscription left, payments in flight) and unsettled usage."""
    views = _subscriptions(engine, organization_id)
    found = {
        "live_subscriptions": [v.id for v in views if v.status != Status.CANCELED],
        "subscriptions_with_open_charges": [
            v.id for v in views if billing.open_charges(payments, v.id).count],
        "customers_with_unsettled_usage": [
            c for c in customer_ids(engine, organization_id) if ledger.has_outstanding(c)],
    }
    return {k: v for k, v in found.items() if v}


@router.get("/{organization_id}", response_model=OrganizationResource,
            responses=problem_responses(401, 404, 422),
            summary="Retrieve an organization")
def get_organization_(organization_id: OrganizationId, principal: ReaderDep,
                      engine: EngineDep) -> OrganizationResource:
    org = visible_organization(engine, principal, organization_id)
    return OrganizationResource(id=org.id, name=org.name, created=org.created)


@router.delete("/{organization_id}", response_model=OrganizationResource,
               responses=problem_responses(401, 403, 404, 409, 422),
               summary="Delete an organization")
async def delete_organization(organization_id: OrganizationId, principal: OwnerDep,
                              engine: EngineDep, ledger: LedgerDep, payments: PaymentsDep
                              ) -> OrganizationResource:
    """Owners (or operators) only, and only once billing is over (D22): no live subscription,
    no open charges, no unsettled usage. Every key of the organization stops working."""
    org = await run_in_threadpool(visible_organization, engine, principal, organization_id)
    outstanding = await run_in_threadpool(_outstanding, engine, ledger, payments, org.id)
    if outstanding:
        what = "; ".join(f"{k.replace('_', ' ')}: {', '.join(v)}"
                         for k, v in outstanding.items())
        raise ApiProblem(409, "outstanding-obligations",
                         f"the organization still has outstanding obligations ({what}); cancel "
                         "its subscriptions and settle usage first", code="outstanding_obligations",
                         outstanding=outstanding)
    org = await run_in_threadpool(mark_deleted, engine, org.id)
    return OrganizationResource(id=org.id, name=org.name, created=org.created, deleted=True)
