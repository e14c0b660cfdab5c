"""D14 through HTTP with the real worker: the cancellation preview shows the retention offer;
accepting it instead of cancelling removes the scheduled cancel, charges nothing now and
discounts the next renewals; members may not accept it; it is offered once."""

from __future__ import annotations

import pytest

from sqlmodel import select

from config.settings import RetentionSettings, Settings
from payments.models import ChargeAttempt
from store.engine import get_engine, session_scope
from tests.api.helpers import assert_problem, create_customer, create_subscription, settle

pytestmark = pytest.mark.temporal


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention": RetentionSettings(percent_off=50,
                                                                      periods=1)})


async def test_accepting_the_offer_instead_of_cancelling(api, env, org, settings):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])  # pro-monthly
    sid = sub["id"]
    r = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert r.status_code == 200 and r.json()["status"] == "non_renewing"

    preview = (await api.get(f"/v1/subscriptions/{sid}/cancellation_preview",
                             headers=org.owner)).json()
    offer = preview["retention_offer"]
    assert offer["percent_off"] == 50 and offer["periods"] == 1
    assert offer["accept_url"] == f"/v1/subscriptions/{sid}/accept_retention_offer"

    r = await api.post(offer["accept_url"], headers=org.member)
    assert_problem(r, 403)
    r = await api.post(offer["accept_url"], headers=org.owner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "active" and body["cancel_at"] is None
    assert body["discount"] == {"percent_off": 50, "periods_left": 1}
    assert body["renewal"]["line"].startswith("Renewing on")
    again = await api.post(offer["accept_url"], headers=org.owner)
    assert_problem(again, 409, code="retention_offer_used")
    preview = (await api.get(f"/v1/subscriptions/{sid}/cancellation_preview",
                             headers=org.owner)).json()
    assert preview["retention_offer"] is None

    engine = get_engine(settings.database_url)

    def succeeded() -> list[int]:
        with session_scope(engine) as session:
            rows = session.exec(select(ChargeAttempt).where(
                ChargeAttempt.subscription_id == sid, ChargeAttempt.status == "succeeded")
                .order_by(ChargeAttempt.id))
            return [row.amount for row in rows]

    await env.sleep(62 * 86400)  # two renewals: one discounted, then the plan price

    async def three_charges():
        return len(succeeded()) >= 3
    await settle(three_charges)
    full = succeeded()[0]
    assert succeeded() == [full, full // 2, full]
    r = await api.get(f"/v1/subscriptions/{sid}", headers=org.member)
    assert r.json()["discount"] is None
