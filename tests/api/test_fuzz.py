"""Schemathesis fuzzes every operation of the OpenAPI document, valid and invalid inputs,
against the real app (ASGI), the real worker on a time-skipping server, localstripe and SQLite:
no input may produce a 5xx, and every answer must match the document.

The documented examples name a customer (cus_8sKd92LmQpXz0aBc) and a subscription
(sub_4fT9kQ2mZx8LpR1a); both are created under those ids first, so the explicit-example
phase reaches the workflow (cancel, reactivate, postpone, preview, credits) instead of
stopping at 404s.

Schemathesis drives the app on its own event-loop thread (the app connects its own Temporal
client there in its lifespan), so the test server and the worker run on another background
loop and the test itself is synchronous.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts import keys
from accounts.customers import create_customer
from api.app import create_app
from config.plans import load_catalog
from config.settings import Settings, TemporalSettings
from domain.lifecycle import NewSubscription
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.api.helpers import assert_problem, bearer
from tests.fakes_stripe import CARD_OK
from tests.support.temporal import time_skipping_env
from workers.main import build_worker
from workflows import client_ops

pytestmark = pytest.mark.temporal

CUSTOMER, SUBSCRIPTION = "cus_8sKd92LmQpXz0aBc", "sub_4fT9kQ2mZx8LpR1a"
# Bounded so the run takes seconds; SUBS_FUZZ_EXAMPLES=200 for a deeper search by hand.
EXAMPLES_PER_OPERATION = int(os.environ.get("SUBS_FUZZ_EXAMPLES", "10"))


class BackgroundLoop:
    """An event loop on a thread, for the Temporal test server and the worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()  # a stopped loop left open is a ResourceWarning when collected


def _seed(settings: Settings, org_id: str) -> NewSubscription:
    """The documented example customer (with a card), and the subscription to start."""
    engine = get_engine(settings.database_url)
    payments = PaymentService(engine, StripeGateway(settings.stripe))
    payments.create_customer(CUSTOMER, email="ada@example.com", name="Ada")
    payments.add_test_card(CUSTOMER, CARD_OK)
    create_customer(engine, org_id, "ada@example.com", "Ada", CUSTOMER)
    plan = load_catalog(settings.plans_file).get("pro-monthly")
    return NewSubscription(id=SUBSCRIPTION, customer_id=CUSTOMER, organization_id=org_id,
                           plan=plan, policy=client_ops.policy_from_settings(settings))


def test_no_input_makes_the_api_fail(settings: Settings):
    background = BackgroundLoop()
    env = background.run(time_skipping_env())

    async def start_worker():
        worker = build_worker(env.client, settings)
        await worker.__aenter__()
        return worker

    worker = background.run(start_worker())
    try:
        org, owner = keys.create_organization_with_owner(get_engine(settings.database_url),
                                                         "Fuzz")
        new = _seed(settings, org.id)
        background.run(client_ops.start(env.client, new, settings.temporal.task_queue))
        app_settings = settings.model_copy(update={"temporal": TemporalSettings(
            address=env.client.service_client.config.target_host,
            namespace=env.client.namespace, task_queue=settings.temporal.task_queue)})
        _fuzz(create_app(app_settings), bearer(owner))
    finally:
        background.run(worker.__aexit__(None, None, None))
        background.run(env.shutdown())
        background.close()


def _fuzz(app, auth: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    failures: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    spent: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.given(case=strategy)
            @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
                                 database=None, derandomize=True,
                                 phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                response = case.call(headers=dict(auth))
                seen[(operation.label, response.status_code)] += 1
                case.validate_response(response, checks=checks)

            started = time.perf_counter()
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing about this operation can be made invalid (e.g. no input)
            except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label} [{mode.value}]: {err}")
            finally:
                spent[operation.label] += time.perf_counter() - started
    for (label, status), count in sorted(seen.items()):
        print(f"{label:70} {status} x{count}")
    for label, seconds in spent.most_common(5):
        print(f"slowest: {label:62} {seconds:6.2f} s")
    assert not failures, "\n\n".join(failures)
    # The examples reached the seeded subscription, not only 404s and 422s.
    assert seen[("POST /v1/subscriptions/{subscription_id}/cancel", 200)] >= 1


async def test_an_undecodable_body_is_a_422_naming_the_body(http, org):
    """Found by the fuzzer: FastAPI answers 400 (undocumented) for a body it cannot decode."""
    r = await http.post("/v1/customers", content=b"\xff\xfe\x00garbage",
                        headers={**org.owner, "Content-Type": "application/json"})
    assert assert_problem(r, 422, code="invalid_request")["errors"][0]["field"] == "body"
