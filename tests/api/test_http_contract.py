"""What every client relies on: authentication, problem+json for every 4xx, the OpenAPI
document, and the problem type documentation."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_problem

pytestmark = pytest.mark.temporal


async def test_missing_and_unknown_keys_are_401_problems(http, org):
    r = await http.get("/v1/subscriptions")
    body = assert_problem(r, 401, code="missing_api_key", type="/problems/unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in body["detail"]
    r = await http.get("/v1/subscriptions", headers={"Authorization": "Bearer sk_unknown"})
    assert_problem(r, 401, code="invalid_api_key")
    r = await http.get("/v1/subscriptions", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(r, 401, code="missing_api_key")
    assert (await http.get("/v1/subscriptions", headers=org.member)).status_code == 200


async def test_unknown_routes_methods_and_ids_are_problems(http, org):
    assert_problem(await http.get("/v1/nothing-here", headers=org.owner), 404)
    assert_problem(await http.put("/v1/subscriptions", headers=org.owner), 405)
    r = await http.get("/v1/subscriptions/sub_missing", headers=org.owner)
    assert_problem(r, 404, code="subscription_not_found",
                   detail="no such subscription: sub_missing")
    r = await http.get("/v1/customers/cus_missing", headers=org.owner)
    assert_problem(r, 404, code="customer_not_found")
    r = await http.get("/v1/subscriptions/" + "x" * 65, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "subscription_id"


async def test_openapi_document_and_problem_types(http):
    r = await http.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path in ("/v1/customers", "/v1/customers/{customer_id}",
                 "/v1/customers/{customer_id}/payment_method", "/v1/subscriptions",
                 "/v1/subscriptions/{subscription_id}",
                 "/v1/subscriptions/{subscription_id}/cancel",
                 "/v1/subscriptions/{subscription_id}/reactivate",
                 "/v1/subscriptions/{subscription_id}/postpone",
                 "/v1/subscriptions/{subscription_id}/cancellation_preview",
                 "/v1/subscriptions/{subscription_id}/events",
                 "/v1/customers/{customer_id}/credits",
                 "/v1/customers/{customer_id}/credits/usage",
                 "/v1/customers/{customer_id}/credits/topups",
                 "/v1/organizations/{organization_id}"):
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    assert schemas["CancelBody"]["examples"] and schemas["SubscriptionResource"]["examples"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    cancel = paths["/v1/subscriptions/{subscription_id}/cancel"]["post"]
    assert "application/problem+json" in cancel["responses"]["409"]["content"]

    r = await http.get("/problems/request-refused")
    assert r.status_code == 200 and r.json()["type"] == "/problems/request-refused"
    assert_problem(await http.get("/problems/nope"), 404)
