"""The activities' contract with the workflow: names, declines as results, retryable errors as
plain exceptions (Temporal retries them), the others as non-retryable ApplicationError. The last
test runs them in a real worker on the time-skipping server to show Temporal's side of it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.payments import PaymentActivities
from activities.types import ChargeRequest, ChargeResult
from payments import store
from payments.errors import RetryableGatewayError
from payments.gateway import StripeGateway
from payments.models import StripeCustomer
from payments.service import PaymentService
from store.engine import get_engine
from tests.fakes_stripe import CARD_DECLINED, stripe_settings
from tests.payments.fault_server import intent, stripe_error
from tests.payments.test_charge import request
from tests.support.temporal import time_skipping_env


@pytest.fixture
def engine(sqlite_url):
    """The database does not matter here (charges are covered on both in test_charge)."""
    return get_engine(sqlite_url)


def test_activity_names(service):
    acts = PaymentActivities(service)
    names = {activity._Definition.must_from_callable(fn).name for fn in (
        acts.charge, acts.refund, acts.collect_pending_charges, acts.discard_pending_charges,
        acts.close_open_charges)}
    assert names == {"charge", "refund", "collect_pending_charges", "discard_pending_charges",
                     "close_open_charges"}


def test_a_decline_is_returned(service, new_customer):
    acts = PaymentActivities(service)
    result = ActivityEnvironment().run(acts.charge, request(new_customer(CARD_DECLINED)))
    assert isinstance(result, ChargeResult) and result.status == "declined"
    assert ActivityEnvironment().run(acts.close_open_charges, "sub_1")[0].status == "declined"


@pytest.fixture
def faulty_activities(sqlite_url, fault_server):
    """Activities whose Stripe is the fault server; the customer exists in our database."""
    engine = get_engine(sqlite_url)
    service = PaymentService(engine, StripeGateway(stripe_settings(fault_server.url)))
    store.insert_customer(engine, StripeCustomer(customer_id="cust_f", stripe_customer_id="cus_f",
                                                 default_payment_method="pm_f"))
    return PaymentActivities(service)


def test_retryable_errors_propagate_unchanged(fault_server, faulty_activities):
    fault_server.script(stripe_error(503, "unavailable", "api_error"))
    with pytest.raises(RetryableGatewayError):
        ActivityEnvironment().run(faulty_activities.charge, request("cust_f"))


def test_other_errors_are_non_retryable_application_errors(fault_server, faulty_activities):
    fault_server.script(stripe_error(400, "Invalid currency"))
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(faulty_activities.charge, request("cust_f"))
    assert caught.value.non_retryable and caught.value.type == "NonRetryableGatewayError"


@workflow.defn(sandboxed=False)
class ChargeOnce:
    @workflow.run
    async def run(self, req: ChargeRequest) -> ChargeResult:
        return await workflow.execute_activity(
            "charge", req, result_type=ChargeResult, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10),
                                     maximum_attempts=5))


@pytest.mark.temporal
async def test_in_a_worker_retryable_errors_are_retried_and_others_are_not(
        fault_server, faulty_activities):
    env = await time_skipping_env()
    try:
        queue = f"payments-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=queue, workflows=[ChargeOnce],
                          activities=[faulty_activities.charge],
                          activity_executor=ThreadPoolExecutor(2)):
            # 500, then 429, then an intent that confirms: retried twice, charged once.
            fault_server.script(stripe_error(500, "boom", "api_error"),
                                stripe_error(429, "slow down", "rate_limit_error"),
                                intent("requires_confirmation"), intent("succeeded"))
            result = await env.client.execute_workflow(
                ChargeOnce.run, request("cust_f", key="k-retry"), id=f"wf-{uuid.uuid4()}",
                task_queue=queue)
            assert result.status == "succeeded" and result.payment_intent_id == "pi_fault"
            assert [s.method for s in fault_server.seen] == ["POST", "POST", "POST", "POST"]

            fault_server.seen.clear()
            fault_server.script(stripe_error(401, "Invalid API key", "invalid_request_error"))
            with pytest.raises(WorkflowFailureError) as caught:
                await env.client.execute_workflow(
                    ChargeOnce.run, request("cust_f", key="k-fatal"), id=f"wf-{uuid.uuid4()}",
                    task_queue=queue)
            cause = caught.value.cause
            assert isinstance(cause, ActivityError)
            assert isinstance(cause.cause, ApplicationError) and cause.cause.non_retryable
            assert len(fault_server.seen) == 1  # not retried
    finally:
        await env.shutdown()
