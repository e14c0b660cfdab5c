"""What clients need to talk to a subscription workflow: ids, names, search attributes.

Shared by the workflow, the worker, the API, the CLI and tests so a name is spelled once.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

WORKFLOW_TYPE = "Subscription"
TASK_QUEUE = "subscriptions"

# Signals (fire-and-forget) and updates (validated, answer with the new state or an error)
# share names with the request kinds; both end in the same code path inside the workflow.
SIGNAL_CANCEL = "cancel"
SIGNAL_REACTIVATE = "reactivate"
SIGNAL_POSTPONE = "postpone"
SIGNAL_PAYMENT_METHOD_UPDATED = "payment_method_updated"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_CHANGE_PLAN = "change_plan"
UPDATE_CANCEL = "cancel_subscription"
UPDATE_REACTIVATE = "reactivate_subscription"
UPDATE_POSTPONE = "postpone_cancellation"
UPDATE_PAYMENT_METHOD = "update_payment_method"
UPDATE_PAUSE = "pause_subscription"
UPDATE_RESUME = "resume_subscription"
UPDATE_CHANGE_PLAN = "change_plan"
SIGNAL_ACCEPT_RETENTION_OFFER = "accept_retention_offer"
UPDATE_ACCEPT_RETENTION_OFFER = "accept_retention_offer"
# Answers once nothing is in flight (first charge settled, read model written); changes nothing.
UPDATE_SETTLED = "settled"
# An operator's go-ahead for a held subscription (domain.model.Hold); same name both ways.
SIGNAL_RETRY = "retry"
UPDATE_RETRY = "retry"
QUERY_STATE = "state"
QUERY_EVENTS = "events"
QUERY_REJECTED = "rejected_signals"

STATUS = SearchAttributeKey.for_keyword("SubscriptionStatus")
CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")
ORGANIZATION = SearchAttributeKey.for_keyword("OrganizationId")
PLAN = SearchAttributeKey.for_keyword("PlanId")
PERIOD_END = SearchAttributeKey.for_datetime("CurrentPeriodEnd")
CANCEL_AT = SearchAttributeKey.for_datetime("CancelAt")
# True while the subscription waits for an operator's retry (set only once a hold happened).
HELD = SearchAttributeKey.for_bool("SubscriptionHeld")
SEARCH_ATTRIBUTES = (STATUS, CUSTOMER, ORGANIZATION, PLAN, PERIOD_END, CANCEL_AT, HELD)


def workflow_id(subscription_id: str) -> str:
    """Readable ids, so operators find a subscription in the UI by its id."""
    return f"subscription-{subscription_id}"


def subscription_id_of(workflow_id_: str) -> str:
    return workflow_id_.removeprefix("subscription-")
