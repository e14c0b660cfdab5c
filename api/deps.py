"""Request dependencies, as Annotated aliases (``SettingsDep``, ``PrincipalDep``...).

Everything long-lived (settings, the Temporal client, the catalog, the payment and ledger
services, the clock) is created once per process by ``create_app``/its lifespan and kept on
``app.state``; dependencies only hand it out, so tests build an app with their own parts.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from accounts.keys import Principal, authenticate
from api.outages import temporal_unavailable
from api.problems import ApiProblem
from config.plans import PlanCatalog
from config.settings import Settings
from ledger.service import Ledger
from payments.service import PaymentService
from store.engine import get_engine

Clock = Callable[[], Awaitable[datetime]]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def _engine(settings: SettingsDep) -> Engine:
    return get_engine(settings.database_url)


EngineDep = Annotated[Engine, Depends(_engine)]


def _temporal(request: Request) -> Client:
    client = getattr(request.app.state, "temporal", None)
    if client is None:  # not connected yet
        raise temporal_unavailable()
    return client


TemporalDep = Annotated[Client, Depends(_temporal)]


def _deadline(settings: SettingsDep) -> timedelta:
    """How long one Temporal operation may take before the caller gets a 504."""
    return timedelta(seconds=settings.temporal.api_timeout_seconds)


DeadlineDep = Annotated[timedelta, Depends(_deadline)]


def _catalog(request: Request) -> PlanCatalog:
    return request.app.state.catalog


CatalogDep = Annotated[PlanCatalog, Depends(_catalog)]


async def _now(request: Request) -> datetime:
    """The clock the subscriptions live by (tests pass the time-skipping server's clock)."""
    return await request.app.state.clock()


NowDep = Annotated[datetime, Depends(_now)]


def _payments(request: Request) -> PaymentService:
    return request.app.state.payments


def _ledger(request: Request) -> Ledger:
    return request.app.state.ledger


PaymentsDep = Annotated[PaymentService, Depends(_payments)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk_...`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="subscriptions"'}


async def _principal(engine: EngineDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None or not credentials.credentials:
        raise ApiProblem(401, "unauthenticated", "missing API key: send Authorization: Bearer "
                         "<key>", code="missing_api_key", headers=_CHALLENGE)
    principal = await run_in_threadpool(authenticate, engine, credentials.credentials)
    if principal is None:
        raise ApiProblem(401, "unauthenticated", "unknown or revoked API key",
                         code="invalid_api_key", headers=_CHALLENGE)
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def require_token(request: Request, expected: SecretStr | None, setting: str) -> None:
    """Operator endpoints (``/metrics``, ``/codec``) take one shared token from a setting,
    not an API key: scrapers and the Temporal Web UI are not customers. No token set: open."""
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.get_secret_value().encode()):
        raise ApiProblem(401, "unauthenticated", f"send Authorization: Bearer <{setting}>",
                         code="invalid_operator_token", headers=_CHALLENGE)


def billing_manager(action: str):
    """A dependency that lets only owners and billing admins (and operators) act (D21); the
    refusal names the ``action``. The one rule behind every billing-manager route."""

    def manager(principal: PrincipalDep) -> Principal:
        if not principal.manages_billing:
            raise ApiProblem(403, "forbidden", "only organization owners and billing admins "
                             f"can {action}; ask one of them", code="role_not_allowed")
        return principal

    return Annotated[Principal, Depends(manager)]


BillingManagerDep = billing_manager("cancel or reactivate subscriptions")
