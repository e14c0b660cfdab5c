"""/v1/webhook_endpoints: where an organization receives its D8 events, signed with a secret
that is shown once, when the endpoint is created. Owners and billing admins manage them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import BillingManagerDep, EngineDep, SettingsDep
from api.params import EndpointId
from api.problems import invalid, problem_responses
from api.scope import organization_for, visible_endpoint
from notifications.endpoints import (
    create_endpoint,
    delete_endpoint,
    list_endpoints,
)
from notifications.models import WebhookEndpoint
from notifications.targets import TargetRefused, check_url

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhook endpoints"])


class CreateWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://example.com/hooks/subscriptions", "description": "billing sync"}]})

    url: str = Field(max_length=2000, pattern=r"^https?://[^\s/]+(/\S*)?$",
                     description="An https URL (http in development) on a public address "
                     "that receives POSTed events.")
    description: str | None = Field(default=None, max_length=200)
    organization: str | None = Field(default=None, max_length=64,
                                     description="Operator keys only: the organization.")


class WebhookEndpointResource(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None = None
    organization: str
    created: datetime
    secret: str | None = Field(default=None, description=(
        "Only when created: verify Subscriptions-Signature (t=..,v1=hex HMAC-SHA256 of "
        "\"<t>.<body>\") with it."))
    deleted: bool | None = None


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpointResource]


def _resource(endpoint: WebhookEndpoint, **extra) -> WebhookEndpointResource:
    return WebhookEndpointResource(id=endpoint.id, url=endpoint.url,
                                   description=endpoint.description,
                                   organization=endpoint.organization_id,
                                   created=endpoint.created, **extra)


@router.post("", status_code=201, response_model=WebhookEndpointResource,
             response_model_exclude_none=True, responses=problem_responses(401, 403, 404, 422),
             summary="Create a webhook endpoint")
async def create_webhook_endpoint(body: CreateWebhookEndpoint, principal: BillingManagerDep,
                                  engine: EngineDep, settings: SettingsDep
                                  ) -> WebhookEndpointResource:
    """Every later D8 event of the organization is POSTed here, signed; the answer carries
    the signing secret, which is never shown again. Refused (422 on `url`): http in
    production, and addresses that are not public (loopback, private, link-local, metadata);
    each delivery checks the addresses the host resolves to again."""
    try:
        check_url(body.url, settings.notifications, https_only=settings.production)
    except TargetRefused as refused:
        raise invalid("url", refused.rule, refused.message) from None
    organization = await organization_for(engine, principal, body.organization)
    endpoint = await run_in_threadpool(create_endpoint, engine, organization, body.url,
                                       body.description)
    return _resource(endpoint, secret=endpoint.secret)


@router.get("", response_model=WebhookEndpointList, response_model_exclude_none=True,
            responses=problem_responses(401, 403, 404, 422),
            summary="List webhook endpoints")
async def list_webhook_endpoints(principal: BillingManagerDep, engine: EngineDep,
                                 organization: Annotated[str | None, Query(max_length=64)] = None
                                 ) -> WebhookEndpointList:
    org = await organization_for(engine, principal, organization)
    endpoints = await run_in_threadpool(list_endpoints, engine, org)
    return WebhookEndpointList(data=[_resource(e) for e in endpoints])


@router.get("/{endpoint_id}", response_model=WebhookEndpointResource,
            response_model_exclude_none=True, responses=problem_responses(401, 403, 404, 422),
            summary="Retrieve a webhook endpoint")
async def get_webhook_endpoint(endpoint_id: EndpointId, principal: BillingManagerDep,
                               engine: EngineDep) -> WebhookEndpointResource:
    return _resource(await visible_endpoint(engine, principal, endpoint_id))


@router.delete("/{endpoint_id}", response_model=WebhookEndpointResource,
               response_model_exclude_none=True, responses=problem_responses(401, 403, 404, 422),
               summary="Delete a webhook endpoint")
async def delete_webhook_endpoint(endpoint_id: EndpointId, principal: BillingManagerDep,
                                  engine: EngineDep) -> WebhookEndpointResource:
    """Deliveries still queued for it are dropped."""
    endpoint = await visible_endpoint(engine, principal, endpoint_id)
    await run_in_threadpool(delete_endpoint, engine, endpoint.id)
    return _resource(endpoint, deleted=True)
