"""Request dependencies, as Annotated aliases (``SettingsDep``, ``ReaderDep``...).

Everything long-lived (settings, the Temporal client, the catalog, the payment and ledger
services, the clock) is created once per process by ``create_app``/its lifespan and kept on
``app.state``; dependencies only hand it out, so tests build an app with their own parts.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from accounts.keys import Principal, authenticate
from accounts.models import Role
from api.limits import rate_limited
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


async def _principal(request: Request, engine: EngineDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller's key, within its rate (api/limits.py: 429 with Retry-After past it)."""
    if credentials is None or not credentials.credentials:
        raise ApiProblem(401, "unauthenticated", "missing API key: send Authorization: Bearer "
                         "<key>", code="missing_api_key", headers=_CHALLENGE)
    principal = await run_in_threadpool(authenticate, engine, credentials.credentials)
    if principal is None:
        raise ApiProblem(401, "unauthenticated", "unknown or revoked API key",
                         code="invalid_api_key", headers=_CHALLENGE)
    wait = request.app.state.rate_limiter.take(principal.key_id)
    if wait:
        raise rate_limited(wait)
    return principal


_WHO = {Role.OWNER: "owners", Role.BILLING_ADMIN: "billing admins", Role.MEMBER: "members",
        Role.OPERATOR: "operators"}


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


class Requires:
    """A route's access rule: the roles whose keys may call it (D21). Every route that takes an
    API key declares one (``principal: ReaderDep``, ``BillingManagerDep``, ``OwnerDep``);
    api/access.py reads them back from the app for the table in docs/api.md. Another
    organization's resources are a 404 (api/scope.py), whatever the role."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, request: Request,
                       principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if principal.role not in self.roles:
            who = " and ".join(_WHO[r] for r in Role if r in self.roles and r != Role.OPERATOR)
            summary = getattr(request.scope.get("route"), "summary", None) or "do this"
            raise ApiProblem(403, "forbidden", f"only organization {who} may "
                             f"{summary[0].lower() + summary[1:]}; ask one of them",
                             code="role_not_allowed", roles=sorted(self.roles))
        return principal


def requires(*roles: Role) -> Any:
    """``Annotated[Principal, ...]`` for a route parameter: the key, if its role is one of
    ``roles``; else 403 naming who may."""
    return Annotated[Principal, Depends(Requires(*roles))]


ReaderDep = requires(Role.OWNER, Role.BILLING_ADMIN, Role.MEMBER, Role.OPERATOR)
"""Reads, and spending credits on work (every member uses the product)."""
BillingManagerDep = requires(Role.OWNER, Role.BILLING_ADMIN, Role.OPERATOR)
"""Anything that moves money or changes billing (D21): owners and billing admins."""
OwnerDep = requires(Role.OWNER, Role.OPERATOR)
"""Deleting the organization (D22)."""
