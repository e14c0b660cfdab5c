"""A listed subscription says exactly what retrieving it says, in every status: the list is
answered by the read model (eventlog's view, projected from each event's snapshot), a single
subscription by its workflow's live state, so a fact the view does not store (or stores
differently) shows up here as a difference. Before, the list answered null `created`,
`start_date` and `billing_cycle_anchor` and parsed the renewal date out of its display text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from config.settings import DunningSettings, Settings
from tests.api.helpers import (
    Org,
    create_customer,
    create_subscription,
    dt,
    get_subscription,
    iso,
    settle,
)
from tests.fakes_stripe import CARD_DECLINED

pytestmark = pytest.mark.temporal


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One retry an hour after a failed renewal, then unpaid: past_due and unpaid within a
    couple of skipped hours."""
    return settings.model_copy(update={"dunning": DunningSettings(
        retry_delays=[timedelta(hours=1)], final_action="unpaid")})


async def _listed_as_read(api, org: Org, sid: str, status: str) -> dict[str, Any]:
    """Once the subscription reached ``status``, its list item equals GET, field by field
    (the view follows the workflow's events, so poll until it caught up)."""
    async def item_and_read() -> tuple[dict[str, Any], dict[str, Any] | None]:
        read = await get_subscription(api, org, sid)
        r = await api.get("/v1/subscriptions", headers=org.member)
        assert r.status_code == 200, r.text
        return read, next((s for s in r.json()["data"] if s["id"] == sid), None)

    async def agreed() -> dict[str, Any] | None:
        read, item = await item_and_read()
        return read if read["status"] == status and item == read else None

    try:
        return await settle(agreed)
    except AssertionError:
        read, item = await item_and_read()
        assert read["status"] == status
        assert item == read  # pytest shows the fields that differ
        raise


async def test_every_status_lists_what_get_answers(api, env, org):
    """One subscription walks through scheduled, trialing, active, non_renewing, paused,
    active with a pending plan, past_due, unpaid and canceled; incomplete is the next test."""
    customer = await create_customer(api, org)
    now = await env.get_current_time()
    sub = await create_subscription(api, org, customer["id"],
                                    start_date=iso(now + timedelta(days=1)),
                                    trial_end=iso(now + timedelta(days=3)))
    sid, seen = sub["id"], {}
    seen["scheduled"] = await _listed_as_read(api, org, sid, "scheduled")
    assert seen["scheduled"]["renewal"]["line"].startswith("Starts on ")
    assert seen["scheduled"]["created"] and seen["scheduled"]["billing_cycle_anchor"]

    await env.sleep(timedelta(days=1, hours=1))
    seen["trialing"] = await _listed_as_read(api, org, sid, "trialing")
    assert seen["trialing"]["trial_end"] is not None

    await env.sleep(timedelta(days=2))
    seen["active"] = await _listed_as_read(api, org, sid, "active")

    r = await api.post(f"/v1/subscriptions/{sid}/cancel",
                       json={"mode": "at_period_end", "feedback": "too_expensive"},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    seen["non_renewing"] = await _listed_as_read(api, org, sid, "non_renewing")
    assert seen["non_renewing"]["cancellation_details"]["requested_by"]["kind"] == "api_key"
    r = await api.post(f"/v1/subscriptions/{sid}/reactivate", headers=org.owner)
    assert r.status_code == 200, r.text

    resume_at = await env.get_current_time() + timedelta(days=60)
    r = await api.post(f"/v1/subscriptions/{sid}/pause",
                       json={"mode": "now", "resume_at": iso(resume_at)}, headers=org.owner)
    assert r.status_code == 200, r.text
    seen["paused"] = await _listed_as_read(api, org, sid, "paused")
    assert seen["paused"]["renewal"]["line"].startswith("Resuming on ")
    r = await api.post(f"/v1/subscriptions/{sid}/resume", json={"anchor": "keep"},
                       headers=org.owner)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    r = await api.post(f"/v1/subscriptions/{sid}/change_plan", json={"plan": "pro-yearly"},
                       headers=org.owner)
    assert r.status_code == 200 and r.json()["pending_plan"] == "pro-yearly", r.text
    await _listed_as_read(api, org, sid, "active")

    r = await api.post(f"/v1/customers/{customer['id']}/payment_method",
                       json={"card_number": CARD_DECLINED}, headers=org.owner)
    assert r.status_code == 200, r.text
    end = dt((await get_subscription(api, org, sid))["current_period_end"])
    await env.sleep(end - await env.get_current_time() + timedelta(minutes=10))
    seen["past_due"] = await _listed_as_read(api, org, sid, "past_due")
    assert seen["past_due"]["has_access"] is True  # D9: in grace, from the stored grace end

    await env.sleep(timedelta(hours=1, minutes=10))  # the one retry fails too
    seen["unpaid"] = await _listed_as_read(api, org, sid, "unpaid")
    assert seen["unpaid"]["has_access"] is False

    r = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    seen["canceled"] = await _listed_as_read(api, org, sid, "canceled")
    assert seen["canceled"]["renewal"] == {"line": None, "date": None}
    assert set(seen) == {"scheduled", "trialing", "active", "non_renewing", "paused",
                         "past_due", "unpaid", "canceled"}


async def test_incomplete_lists_what_get_answers(api, org):
    customer = await create_customer(api, org, card=CARD_DECLINED)
    sub = await create_subscription(api, org, customer["id"])
    assert sub["status"] == "incomplete"
    incomplete = await _listed_as_read(api, org, sub["id"], "incomplete")
    assert incomplete["has_access"] is False and incomplete["start_date"] is not None

