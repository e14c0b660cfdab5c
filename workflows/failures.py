"""What a failed activity means for a subscription: the shell's classification of an
``ActivityError`` into the core's ``CallFailed`` (pure, deterministic: it reads only the error
Temporal recorded in the history).

Only failures that retrying cannot fix reach here: declines are results, and transient errors
(Stripe 5xx/429, timeouts, a database outage) are retried by Temporal until the policy's alarm
bound. What is left needs an operator: Stripe refusing our key (401) or permissions (403), a
request Stripe or we refuse (400, an idempotency conflict), an unknown error (a bug), or a call
that kept failing past the bound. The code names which, so the Web UI and the logs say what to
fix; Stripe's request id points at the exact request in Stripe's dashboard.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from domain.commands import CallFailed, Charge

MESSAGE_KEPT = 500
_BY_TYPE = {"IdempotencyConflict": "idempotency_conflict",
            "PaymentRequestError": "payment_request_refused"}
_BY_HTTP_STATUS = {401: "stripe_authentication", 403: "stripe_permission"}


def call_failed(activity: str, idempotency_key: str, err: ActivityError,
                charge: Charge | None = None) -> CallFailed:
    cause = err.cause
    code, request_id = "call_failed", None
    if err.retry_state in (RetryState.TIMEOUT, RetryState.MAXIMUM_ATTEMPTS_REACHED):
        # Retryable errors (or no answer at all) until the alarm bound (schedule-to-close)
        # ran out; the cause is the last attempt's error or the timeout.
        code = "call_stalled"
        message = f"still failing after the alarm bound: {cause or err}"
    elif isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) \
            else {}
        request_id = details.get("request_id")
        code = (_BY_HTTP_STATUS.get(details.get("http_status"))
                or _BY_TYPE.get(cause.type or "")
                or ("stripe_rejected" if details.get("http_status") else "call_failed"))
        message = f"{cause.type}: {cause.message}" if cause.type else cause.message
    else:
        message = str(cause or err)
    return CallFailed(idempotency_key=idempotency_key, activity=activity, code=code,
                      message=message[:MESSAGE_KEPT], stripe_request_id=request_id,
                      charge=charge)
