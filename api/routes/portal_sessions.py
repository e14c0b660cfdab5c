"""/v1/portal_sessions: a link to the customer portal, like Stripe's billing portal sessions.

An owner or billing admin key asks for a session for one of its customers and hands the
``url`` to that customer's browser; the API key never reaches the browser. The link works
once and expires after ``SUBS_PORTAL__LINK_TTL_SECONDS``; docs/portal.md has the security model.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from accounts import portal
from api.deps import BillingManagerDep, EngineDep, NowDep, SettingsDep
from api.problems import problem_responses
from api.scope import visible_customer

router = APIRouter(prefix="/v1/portal_sessions", tags=["customers"])

class CreatePortalSession(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"customer": "cus_8sKd92LmQpXz0aBc", "return_url": "https://example.com/account"}]})

    customer: str = Field(min_length=1, max_length=64)
    return_url: AnyHttpUrl = Field(description=(
        "Where the portal's \"Back\" link leads (your application's account page)."))


class PortalSessionResource(BaseModel):
    id: str = Field(examples=["bps_4fT9kQ2mZx8LpR1a"])
    object: Literal["portal_session"] = "portal_session"
    customer: str
    return_url: str
    created: datetime
    url: str = Field(description="Open it once, in the customer's browser, before `expires_at`.")
    expires_at: datetime


@router.post("", status_code=201, response_model=PortalSessionResource,
             responses=problem_responses(401, 403, 404, 422),
             summary="Open a customer portal session")
async def create_portal_session(body: CreatePortalSession, request: Request,
                                principal: BillingManagerDep, engine: EngineDep,
                                settings: SettingsDep, now: NowDep) -> PortalSessionResource:
    """A single-use link to a page where the customer manages their own subscriptions
    (cancel, reactivate, card, credits) and nothing else. Owners and billing admins only."""
    customer = await visible_customer(engine, principal, body.customer)
    ttl = timedelta(seconds=settings.portal.link_ttl_seconds)
    opened = await run_in_threadpool(portal.open_session, engine, customer,
                                     str(body.return_url), now, ttl)
    base = (settings.portal.public_url or str(request.base_url)).rstrip("/")
    row = opened.session
    return PortalSessionResource(id=row.id, customer=row.customer_id, return_url=row.return_url,
                                 created=row.created, expires_at=row.link_expires_at,
                                 url=f"{base}/portal/enter?token={opened.link_secret}")
