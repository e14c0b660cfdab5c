"""The portal's forms over HTTP with the real worker: each goes through the same update path as
the API, and a form the page cannot accept changes nothing. Pause and resume appear only where
the deployment turns them on (SUBS_PORTAL__ALLOW_PAUSE). Last, an immediate cancellation ends
the subscription and the page says so."""

from __future__ import annotations

import pytest

from config.settings import Settings
from tests.api.helpers import create_customer, create_subscription, get_subscription
from tests.portal.helpers import enter


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"portal": settings.portal.model_copy(
        update={"allow_pause": True})})


async def test_pause_resume_offer_and_card_through_the_portal(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    csrf = await enter(api, org, customer["id"])
    page = f"/portal/subscriptions/{sub['id']}"

    r = await api.post(f"{page}/cancel", data={"csrf_token": csrf, "mode": "at_period_end"})
    assert r.status_code == 422 and "Choose a reason" in r.text
    assert (await get_subscription(api, org, sub["id"]))["status"] == "active"

    r = await api.post(f"{page}/pause", data={"csrf_token": csrf})
    assert r.status_code == 303, r.text
    paused = await api.get(r.headers["location"])
    assert "Your subscription will pause." in paused.text and "Pausing on" in paused.text
    assert (await get_subscription(api, org, sub["id"]))["pause_collection"]["mode"] == \
        "at_period_end"
    r = await api.post(f"{page}/resume", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert (await get_subscription(api, org, sub["id"]))["pause_collection"] is None

    r = await api.post(f"{page}/offer", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert "20% off for the next 3 charge(s)." in (await api.get(r.headers["location"])).text
    assert (await get_subscription(api, org, sub["id"]))["discount"] == {
        "percent_off": 20, "periods_left": 3}
    r = await api.post(f"{page}/offer", data={"csrf_token": csrf})  # once per subscription
    assert r.status_code == 409 and 'role="alert"' in r.text

    r = await api.post("/portal/payment_method", data={"csrf_token": csrf,
                                                       "payment_method": "1234"})
    assert r.status_code == 422 and "refused" in r.text
    r = await api.post("/portal/payment_method", data={"csrf_token": csrf,
                                                       "payment_method": "4000 0000 0000 0341"})
    assert r.status_code == 303
    assert "Card on file: Visa ending 0341." in (await api.get(r.headers["location"])).text

    r = await api.post(f"{page}/cancel", data={"csrf_token": csrf, "mode": "immediately",
                                               "reason": "unused"})
    assert r.status_code == 303
    ended = await api.get(r.headers["location"])
    assert "Your subscription ended on" in ended.text and "has ended" in ended.text
    assert "Cancel subscription" not in ended.text and "Keep my subscription" not in ended.text
    assert (await get_subscription(api, org, sub["id"]))["status"] == "canceled"
