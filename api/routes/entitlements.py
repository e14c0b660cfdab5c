"""/v1/customers/{id}/entitlements (D13): the plan, features and seats the customer may use
now. Products call it to gate paid features: after the paid term it answers the free plan
(Pro features and extra seats removed, free daily credits), while content stays untouched."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import (CatalogDep, DeadlineDep, EngineDep, NowDep, ReaderDep, SettingsDep,
                      TemporalDep)
from api.params import CustomerId
from api.problems import problem_responses
from api.scope import live_state, visible_customer
from domain.entitlements import entitlements
from domain.model import Status
from eventlog import store as eventlog

router = APIRouter(prefix="/v1/customers", tags=["customers"])

FREE_PLAN = "free"


class EntitlementsResource(BaseModel):
    object: Literal["entitlements"] = "entitlements"
    customer: str
    plan: str = Field(description="The paid plan in force, or the free plan after the term.")
    paid: bool
    features: list[str]
    seats: int | None = Field(description="Seats included; null: team seats per the plan.")
    free_daily_credits: int = Field(description="Free credits granted each UTC day (D18).")
    paid_through: datetime | None = Field(
        default=None, description="When the paid access renews or, if cancelling, ends.")
    subscription: str | None = None


@router.get("/{customer_id}/entitlements", response_model=EntitlementsResource,
            responses=problem_responses(401, 404, 422, 503, 504),
            summary="What the customer may use now")
async def get_entitlements(customer_id: CustomerId, principal: ReaderDep, engine: EngineDep,
                           client: TemporalDep, deadline: DeadlineDep, catalog: CatalogDep,
                           settings: SettingsDep, now: NowDep) -> EntitlementsResource:
    customer = await visible_customer(engine, principal, customer_id)
    views = await run_in_threadpool(eventlog.customer_views, engine, customer.id)
    # Ended subscriptions grant nothing; the live ones answer with their grace (D9) and dates.
    live = await asyncio.gather(*(live_state(client, view.id, deadline) for view in views
                                  if view.status != Status.CANCELED))
    states = [state for state in live if state is not None]
    result = entitlements(states, now, free_plan=catalog.get(FREE_PLAN),
                          free_daily_credits=settings.credits.free_daily_allowance)
    return EntitlementsResource(customer=customer.id, **result.model_dump(
        exclude={"features"}), features=list(result.features))
