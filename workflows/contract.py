"""What clients need to talk to a subscription workflow: ids, names, search attributes.

Shared by the workflow, the worker, the API, the CLI and tests so a name is spelled once.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey

from domain.requests import Request

WORKFLOW_TYPE = "Subscription"

# Every request (domain.requests) travels as a signal (fire-and-forget) or as an update
# (validated, answers with the new state or the refusal) under ONE name: its kind
# ("cancel", "reactivate", "postpone", "payment_method_updated", "pause", "resume",
# "change_plan", "accept_retention_offer", "retry"). The workflow handles both from this
# table, through one code path.
REQUEST_TYPES: dict[str, type[BaseModel]] = {
    model.model_fields["kind"].default: model for model in get_args(get_args(Request)[0])}
# Update names of earlier versions, still answered: callers and recorded histories use them.
LEGACY_UPDATE_NAMES = {
    "cancel_subscription": "cancel",
    "reactivate_subscription": "reactivate",
    "postpone_cancellation": "postpone",
    "update_payment_method": "payment_method_updated",
    "pause_subscription": "pause",
    "resume_subscription": "resume",
}
# Answers once nothing is in flight (first charge settled, read model written); changes nothing.
UPDATE_SETTLED = "settled"
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
# Name -> the kind the temporal CLI takes ("Keyword", "Datetime", "Bool"): what the dev server,
# the compose job (`python -m workflows.contract`) and the tests register.
SEARCH_ATTRIBUTE_KINDS = {key.name: key.indexed_value_type.name.removeprefix(
    "INDEXED_VALUE_TYPE_").capitalize() for key in SEARCH_ATTRIBUTES}


def workflow_id(subscription_id: str) -> str:
    """Readable ids, so operators find a subscription in the UI by its id."""
    return f"subscription-{subscription_id}"


def subscription_id_of(workflow_id_: str) -> str:
    return workflow_id_.removeprefix("subscription-")


if __name__ == "__main__":  # the compose job's list: NAME=KIND ...
    print(" ".join(f"{name}={kind}" for name, kind in SEARCH_ATTRIBUTE_KINDS.items()))
