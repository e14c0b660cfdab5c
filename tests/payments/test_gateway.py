"""Error classification and request hygiene, against a real fault-injecting HTTP server: no SDK
retries (Temporal owns retrying), one token per request, an Idempotency-Key on every POST."""

from __future__ import annotations

import pytest

from payments.errors import (NonRetryableGatewayError, PaymentMethodRejected,
                             RetryableGatewayError)
from payments.gateway import StripeGateway
from payments.rate_limit import TokenBucket
from tests.fakes_stripe import stripe_settings
from tests.payments.fault_server import Reply, intent, stripe_error


class CountingBucket(TokenBucket):
    def __init__(self) -> None:
        super().__init__(rate=1000, burst=1000)
        self.acquired = 0

    def acquire(self) -> float:
        self.acquired += 1
        return super().acquire()


@pytest.fixture
def bucket() -> CountingBucket:
    return CountingBucket()


@pytest.fixture
def fault_gateway(fault_server, bucket) -> StripeGateway:
    return StripeGateway(stripe_settings(fault_server.url, request_timeout_seconds=0.3),
                         bucket=bucket)


def _create(gateway: StripeGateway):
    return gateway.create_payment_intent("key-1", amount=100, currency="usd",
                                         customer="cus_x", payment_method="pm_x")


@pytest.mark.parametrize("reply", [
    stripe_error(500, "internal", "api_error"),
    Reply(502, "<html>bad gateway</html>"),
    Reply(503, {"error": {"message": "unavailable"}}),
    stripe_error(429, "too many requests", "rate_limit_error"),
    Reply(429, "slow down"),
    stripe_error(409, "lock timeout", "api_error"),
    Reply(drop=True),
    Reply(delay=0.6),  # longer than the 0.3 s client timeout
], ids=["500", "502-html", "503", "429", "429-text", "409", "dropped", "timeout"])
def test_transient_failures_are_retryable(fault_server, fault_gateway, bucket, reply):
    fault_server.script(reply)
    with pytest.raises(RetryableGatewayError):
        _create(fault_gateway)
    assert len(fault_server.seen) == 1  # the SDK did not retry on its own
    assert bucket.acquired == 1


@pytest.mark.parametrize("reply", [
    stripe_error(400, "Missing amount"),
    stripe_error(404, "No such customer"),
    stripe_error(401, "Invalid API key"),
    stripe_error(403, "Forbidden"),
    stripe_error(400, "Keys for idempotent requests...", "idempotency_error"),
], ids=["400", "404", "401", "403", "idempotency"])
def test_other_client_errors_are_not_retryable(fault_server, fault_gateway, reply):
    fault_server.script(reply)
    with pytest.raises(NonRetryableGatewayError) as caught:
        _create(fault_gateway)
    assert not isinstance(caught.value, RetryableGatewayError)
    assert caught.value.http_status == reply.status
    assert len(fault_server.seen) == 1


def test_a_decline_on_confirm_is_a_result_not_an_error(fault_server, fault_gateway):
    fault_server.script(stripe_error(402, "Your card has insufficient funds.", "card_error",
                                     code="card_declined", decline_code="insufficient_funds"))
    result = fault_gateway.confirm_payment_intent("pi_1", idempotency_key="k:confirm")
    assert result.declined and result.id == "pi_1"
    assert result.decline_code == "insufficient_funds"
    assert "insufficient funds" in result.message


def test_a_card_error_outside_a_charge_is_a_rejected_payment_method(fault_server, fault_gateway):
    fault_server.script(stripe_error(402, "Your card was declined.", "card_error",
                                     code="card_declined"))
    with pytest.raises(PaymentMethodRejected):
        fault_gateway.attach_payment_method("cus_x", "pm_x")


def test_every_post_carries_an_idempotency_key_and_every_request_a_token(
        fault_server, fault_gateway, bucket):
    fault_server.script(intent("requires_confirmation"), intent("succeeded"),
                        intent("succeeded"), intent("canceled"),
                        Reply(200, {"id": "pm_x", "object": "payment_method"}),
                        Reply(200, {"id": "cus_x", "object": "customer"}))
    created = _create(fault_gateway)
    assert created.status == "requires_confirmation"
    assert fault_gateway.confirm_payment_intent("pi_fault", idempotency_key="k:c").status \
        == "succeeded"
    assert fault_gateway.retrieve_payment_intent("pi_fault").status == "succeeded"
    assert fault_gateway.cancel_payment_intent("pi_fault").status == "canceled"
    fault_gateway.attach_payment_method("cus_x", "pm_x")
    posts = [s for s in fault_server.seen if s.method == "POST"]
    assert len(posts) == 5
    assert all(s.headers.get("Idempotency-Key") for s in posts)
    assert fault_server.seen[0].headers["Idempotency-Key"] == "key-1"
    assert fault_server.seen[1].headers["Idempotency-Key"] == "k:c"
    assert bucket.acquired == len(fault_server.seen) == 6


@pytest.mark.parametrize("off_session", [False, True])
def test_off_session_is_sent_on_confirm_only_when_configured(fault_server, bucket, off_session):
    gateway = StripeGateway(stripe_settings(fault_server.url, confirm_off_session=off_session),
                            bucket=bucket)
    fault_server.script(intent("succeeded"))
    gateway.confirm_payment_intent("pi_1", idempotency_key="k")
    form = fault_server.seen[0].form
    assert (form.get("off_session") == ["true"]) is off_session


def test_stripe_keys_stay_within_stripe_limits():
    from payments.gateway import stripe_key

    assert stripe_key("sub_1:2025-01", "create", "pm_1") == "sub_1:2025-01:create:pm_1"
    long = stripe_key("k" * 300, "confirm", "pi_1")
    assert len(long) == 255 and long == stripe_key("k" * 300, "confirm", "pi_1")
    assert long != stripe_key("k" * 300, "confirm", "pi_2")
