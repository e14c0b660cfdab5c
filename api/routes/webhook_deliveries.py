"""/v1/webhook_endpoints/{id}/replay, /replays/{id}, /deliveries: resend a time range of events
to an endpoint, see its deliveries (the dead ones among them) and retry a dead one by hand.
Owners and billing admins, like the endpoints themselves.

Nothing here sends anything: a replay is stored and the worker's dispatcher queues and
delivers its events; a retry puts the dead delivery back in the dispatcher's queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import BillingManagerDep, EngineDep, NowDep
from api.params import EndpointId, IdempotencyKey
from api.problems import ApiProblem, invalid, not_found, problem_responses
from api.schemas.deliveries import (
    DeliveryList,
    DeliveryResource,
    DeliveryStatus,
    ReplayBody,
    ReplayResource,
)
from api.scope import visible_endpoint
from notifications import deliveries, replays

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhook endpoints"])


@router.post("/{endpoint_id}/replay", status_code=202, response_model=ReplayResource,
             responses=problem_responses(401, 403, 404, 409, 422),
             summary="Resend a time range of events to the endpoint")
async def replay(endpoint_id: EndpointId, body: ReplayBody, principal: BillingManagerDep,
                 engine: EngineDep, now: NowDep,
                 idempotency_key: IdempotencyKey = None) -> ReplayResource:
    """Every event of the organization created in `[created.gte, created.lt)` (and of
    `types`, if given) is POSTed to this endpoint once more, signed with its secret, with the
    original event id (receivers that drop ids they processed stay idempotent). Answers at
    once (202); the worker queues and delivers the events, retried like any delivery. Each
    request is one replay: send an `Idempotency-Key` to make a retried request find the first
    one instead of resending everything again. Only retained events can be replayed."""
    if (body.created.lt or now) <= body.created.gte:
        raise invalid("created.lt", "empty_range", "created.lt must be after created.gte")
    endpoint = await visible_endpoint(engine, principal, endpoint_id)
    try:
        found, _ = await run_in_threadpool(
            lambda: replays.request_replay(engine, endpoint, created_gte=body.created.gte,
                                           created_lt=body.created.lt, types=body.types,
                                           idempotency_key=idempotency_key, now=now))
    except replays.ReplayKeyReused as err:
        raise ApiProblem(409, "request-refused", str(err),
                         code="idempotency_key_reused") from None
    return await _resource(engine, found)


@router.get("/{endpoint_id}/replays/{replay_id}", response_model=ReplayResource,
            responses=problem_responses(401, 403, 404, 422), summary="Retrieve a replay")
async def get_replay(endpoint_id: EndpointId,
                     replay_id: Annotated[str, Path(max_length=64)], principal: BillingManagerDep,
                     engine: EngineDep) -> ReplayResource:
    await visible_endpoint(engine, principal, endpoint_id)
    found = await run_in_threadpool(replays.get_replay, engine, replay_id)
    if found is None or found.endpoint_id != endpoint_id:
        raise not_found("webhook replay", replay_id)
    return await _resource(engine, found)


async def _resource(engine, found) -> ReplayResource:
    progress = await run_in_threadpool(replays.progress, engine, found.id)
    return ReplayResource.of(found, progress)


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryList,
            responses=problem_responses(401, 403, 404, 422),
            summary="List the endpoint's deliveries")
async def list_deliveries(
    endpoint_id: EndpointId, principal: BillingManagerDep, engine: EngineDep,
    status: Annotated[DeliveryStatus | None, Query(description=(
        "`failed`: the dead ones, given up after the last attempt."))] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[int | None, Query(ge=0, description=(
        "The last delivery id of the previous page."))] = None,
) -> DeliveryList:
    """Oldest first. Finished deliveries are kept for the event retention period."""
    await visible_endpoint(engine, principal, endpoint_id)
    rows = await run_in_threadpool(lambda: deliveries.list_deliveries(
        engine, endpoint_id=endpoint_id, status=status, limit=limit + 1,
        starting_after=starting_after))
    return DeliveryList(data=[DeliveryResource.of(r) for r in rows[:limit]],
                        has_more=len(rows) > limit)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry",
             response_model=DeliveryResource,
             responses=problem_responses(401, 403, 404, 409, 422),
             summary="Retry a dead delivery")
async def retry_delivery(endpoint_id: EndpointId,
                         delivery_id: Annotated[int, Path(ge=0)], principal: BillingManagerDep,
                         engine: EngineDep, now: NowDep) -> DeliveryResource:
    """A dead (`failed`) delivery goes back to the queue, due now, with a fresh set of
    attempts; the worker sends it. One already queued answers as it is; a sent or skipped
    one is refused (409: replay its event instead)."""
    await visible_endpoint(engine, principal, endpoint_id)
    row = await run_in_threadpool(deliveries.get_delivery, engine, delivery_id)
    if row is None or row.recipient != endpoint_id:
        raise not_found("webhook delivery", str(delivery_id))
    if row.status != deliveries.DEAD and row.status != "pending":
        raise ApiProblem(409, "request-refused", f"delivery {delivery_id} is {row.status}, "
                         "not dead: only failed deliveries are retried (replay the event "
                         "to send it again)", code="delivery_not_dead")
    if row.status == deliveries.DEAD:
        await run_in_threadpool(deliveries.retry_dead, engine, delivery_id, now)
        row = await run_in_threadpool(deliveries.get_delivery, engine, delivery_id)
    assert row is not None
    return DeliveryResource.of(row)
