"""/v1/events: the organization's D8 events, filtered, oldest first, kept for the retention
period (``SUBS_EVENTS__RETENTION``, 30 days by default). Any role may read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, ReaderDep
from api.problems import invalid, problem_responses
from api.schemas.deliveries import TYPE
from api.schemas.subscriptions import EventList, EventResource, Requester
from api.scope import organization_for
from domain.model import Event
from eventlog import listing

router = APIRouter(prefix="/v1/events", tags=["events"])

def event_resource(e: Event) -> EventResource:
    return EventResource(id=e.id, type=e.type, created=e.created,
                         request=Requester(kind=e.request.kind, id=e.request.id)
                         if e.request else None,
                         data={"object": e.data, "previous_attributes": e.previous_attributes})


@router.get("", response_model=EventList, responses=problem_responses(401, 404, 422),
            summary="List the organization's events (D8)")
async def list_events(
    principal: ReaderDep, engine: EngineDep,
    type: Annotated[str | None, Query(max_length=64, pattern=TYPE, description=(
        "An event type, or a prefix ending in `.*` (`customer.subscription.*`)."))] = None,
    subscription: Annotated[str | None, Query(max_length=64)] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    created_gte: Annotated[AwareDatetime | None, Query(alias="created[gte]", description=(
        "Created at or after (ISO 8601 with an offset)."))] = None,
    created_lt: Annotated[AwareDatetime | None, Query(alias="created[lt]", description=(
        "Created before."))] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(max_length=128, description=(
        "The last event id of the previous page."))] = None,
    organization: Annotated[str | None, Query(max_length=64, description=(
        "Operator keys only: the organization to list."))] = None,
) -> EventList:
    """Ordered by `created`, then id: page on with `starting_after` (the last id of the page)
    while `has_more` is true. Events older than the retention period are gone."""
    if created_gte is not None and created_lt is not None and created_lt <= created_gte:
        raise invalid("created[lt]", "empty_range", "created[lt] must be after created[gte]")
    org = await organization_for(engine, principal, organization)
    after = None
    if starting_after is not None:
        after = await run_in_threadpool(listing.position, engine, org, starting_after)
        if after is None:
            raise invalid("starting_after", "unknown_event",
                          f"no event {starting_after} in this organization (ids of the "
                          "previous page only; older events may have been pruned)")
    spec = listing.EventFilter(organization_id=org, types=(type,) if type else (),
                               subscription_id=subscription, customer_id=customer,
                               created_gte=created_gte, created_lt=created_lt)
    events = await run_in_threadpool(listing.list_events, engine, spec, limit=limit + 1,
                                     after=after)
    return EventList(has_more=len(events) > limit,
                     data=[event_resource(e) for e in events[:limit]])
