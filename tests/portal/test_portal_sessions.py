"""Portal sessions over HTTP (no browser): who may open one, and what a link and its cookie
allow. A link works once and only until it expires; the cookie is HttpOnly, SameSite=Strict
and scoped to /portal; a form without the session's CSRF token changes nothing."""

from __future__ import annotations

from datetime import timedelta

from tests.api.helpers import (assert_problem, create_customer, create_subscription, dt,
                               get_subscription)
from tests.portal.helpers import RETURN, enter, link_path, open_link


async def test_only_billing_managers_open_sessions_for_their_own_customers(
        http, org, other_org):
    customer = await create_customer(http, org)
    body = {"customer": customer["id"], "return_url": RETURN}
    assert_problem(await http.post("/v1/portal_sessions", json=body, headers=org.member), 403,
                   code="role_not_allowed")
    assert_problem(await http.post("/v1/portal_sessions", json=body,
                                   headers=other_org.owner), 404, code="customer_not_found")
    bad = await http.post("/v1/portal_sessions", headers=org.owner,
                          json={**body, "return_url": "javascript:alert(1)"})
    assert assert_problem(bad, 422)["errors"][0]["field"] == "return_url"
    r = await http.post("/v1/portal_sessions", json=body, headers=org.owner)
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["object"] == "portal_session" and session["customer"] == customer["id"]
    assert session["url"].startswith("http://api/portal/enter?token=")
    assert dt(session["expires_at"]) - dt(session["created"]) == timedelta(minutes=5)


async def test_a_link_opens_once_and_its_cookie_is_strict_and_http_only(http, org):
    customer = await create_customer(http, org)
    link = link_path((await open_link(http, org, customer["id"]))["url"])
    assert (await http.get("/portal")).status_code == 401  # no cookie yet
    first = await http.get(link)
    assert first.status_code == 200, first.text
    cookie = first.headers["set-cookie"].lower()
    for part in ("subs_portal=", "httponly", "samesite=strict", "path=/portal"):
        assert part in cookie
    assert first.headers["referrer-policy"] == "no-referrer"
    home = await http.get("/portal")
    assert home.status_code == 200 and customer["email"] in home.text
    again = await http.get(link)
    assert again.status_code == 403 and "can no longer be used" in again.text
    assert RETURN in again.text  # the way back to the integrator's page


async def test_an_expired_link_or_session_is_refused(http, org, env):
    customer = await create_customer(http, org)
    stale = link_path((await open_link(http, org, customer["id"]))["url"])
    fresh = link_path((await open_link(http, org, customer["id"]))["url"])
    await env.sleep(timedelta(minutes=5, seconds=1))
    assert (await http.get(stale)).status_code == 403
    fresh_again = link_path((await open_link(http, org, customer["id"]))["url"])
    assert (await http.get(fresh_again)).status_code == 200
    assert (await http.get(fresh)).status_code == 403
    assert (await http.get("/portal")).status_code == 200
    await env.sleep(timedelta(hours=1))
    expired = await http.get("/portal")
    assert expired.status_code == 401 and "session has ended" in expired.text


async def test_a_form_without_the_session_csrf_token_changes_nothing(http, org):
    customer = await create_customer(http, org)
    await enter(http, org, customer["id"])
    for form in ({}, {"csrf_token": "0" * 64}):
        r = await http.post("/portal/subscriptions/sub_x/reactivate", data=form)
        assert r.status_code == 403 and "form has expired" in r.text
        r = await http.post("/portal/payment_method", data={**form,
                                                            "payment_method": "4242424242424242"})
        assert r.status_code == 403


async def test_pause_is_not_offered_unless_turned_on(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    csrf = await enter(api, org, customer["id"])
    page = await api.get(f"/portal/subscriptions/{sub['id']}")
    assert "Pause at the end" not in page.text
    r = await api.post(f"/portal/subscriptions/{sub['id']}/pause", data={"csrf_token": csrf})
    assert r.status_code == 404
    assert (await get_subscription(api, org, sub["id"]))["pause_collection"] is None
