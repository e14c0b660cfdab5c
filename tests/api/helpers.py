"""Small HTTP helpers shared by the API tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.fakes_stripe import CARD_DECLINED, CARD_OK


@dataclass
class Org:
    id: str
    owner: dict[str, str]
    billing_admin: dict[str, str]
    member: dict[str, str]


def bearer(raw_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw_key}"}


async def settle(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``check`` (real time) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def assert_problem(response: httpx.Response, status: int, **fields: Any) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    for name, value in fields.items():
        assert body[name] == value, (name, body)
    return body


def dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def create_customer(api: httpx.AsyncClient, org: Org, card: str | None = CARD_OK,
                          email: str = "ada@example.com") -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "name": "Ada Lovelace"}
    if card is not None:
        body["payment_method"] = card
    r = await api.post("/v1/customers", json=body, headers=org.owner)
    assert r.status_code == 201, r.text
    return r.json()


async def create_subscription(api: httpx.AsyncClient, org: Org, customer: str,
                              plan: str = "pro-monthly", **extra: Any) -> dict[str, Any]:
    r = await api.post("/v1/subscriptions", json={"customer": customer, "plan": plan, **extra},
                       headers=org.owner)
    assert r.status_code == 201, r.text
    return r.json()


async def declining_subscription(api: httpx.AsyncClient, org: Org
                                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(customer, subscription): the first period paid, then the customer's card replaced by
    one that declines, so the renewal goes past_due."""
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    r = await api.post(f"/v1/customers/{customer['id']}/payment_method",
                       json={"card_number": CARD_DECLINED}, headers=org.owner)
    assert r.status_code == 200, r.text
    return customer, sub


async def sleep_past_period_end(env: Any, sub: dict[str, Any], by: timedelta) -> None:
    """Skip the time-skipping server's clock to ``by`` after the subscription's period end."""
    await env.sleep(dt(sub["current_period_end"]) - await env.get_current_time() + by)


async def get_subscription(api: httpx.AsyncClient, org: Org, sub_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/subscriptions/{sub_id}", headers=org.member)
    assert r.status_code == 200, r.text
    return r.json()


async def list_events(api: httpx.AsyncClient, org: Org, sub_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/v1/subscriptions/{sub_id}/events", headers=org.member)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def renewal_date(sub: dict[str, Any]) -> datetime:
    """The date inside the D2 line, which must equal ``renewal.date``."""
    line = sub["renewal"]["line"]
    date = dt(line.rsplit(" on ", 1)[1])
    assert date == dt(sub["renewal"]["date"])
    return date
