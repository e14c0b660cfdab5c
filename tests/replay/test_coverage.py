"""Replay coverage: every request type and every status occurs in at least one recorded history
of the newest generation (tests/replay/record.py, ``CURRENT``).

A replay only protects the paths some history takes. A new request type in domain.requests or
a new value of domain.model.Status fails here until a scenario that uses it is recorded, so a
path cannot be added (or changed later) without a history that a changed workflow must replay.

What a history shows is read from its events: requests from signals and accepted updates (the
payload's ``kind``), statuses from the ``SubscriptionStatus`` search attribute and from every
payload holding a subscription (update results, continue-as-new inputs with their recent
events, the workflow's result, event snapshots of per-activity writes). Payloads are JSON (the
pydantic data converter), base64-encoded in the history JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pytest
from pydantic import Field

from domain.model import Status
from domain.requests import Cancel, Request
from tests.replay.record import CURRENT
from workflows import contract

JSON_PLAIN = base64.b64encode(b"json/plain").decode()


def request_kinds(request: Any = Request) -> set[str]:
    """The ``kind`` literals of the Request union: a new request type is in it at once."""
    union = get_args(request)[0]
    return {get_args(model.model_fields["kind"].annotation)[0] for model in get_args(union)}


STATUSES = {status.value for status in Status}


def _payloads(node: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every JSON payload under ``node``, decoded, with the key it was found under."""
    if isinstance(node, dict):
        if node.get("metadata", {}).get("encoding") == JSON_PLAIN and "data" in node:
            yield key, json.loads(base64.b64decode(node["data"]))
            return
        for k, value in node.items():
            yield from _payloads(value, k)
    elif isinstance(node, list):
        for value in node:
            yield from _payloads(value, key)


def _subscription_statuses(value: Any) -> Iterator[str]:
    """Statuses of the subscriptions (states or event snapshots) inside a decoded payload."""
    if isinstance(value, dict):
        if "current_period_end" in value and value.get("status") in STATUSES:
            yield value["status"]
        for item in value.values():
            yield from _subscription_statuses(item)
    elif isinstance(value, list):
        for item in value:
            yield from _subscription_statuses(item)


def _kinds(payloads: dict) -> Iterator[str]:
    for _, value in _payloads(payloads):
        if isinstance(value, dict) and isinstance(value.get("kind"), str):
            yield value["kind"]


def seen(history: dict) -> tuple[set[str], set[str]]:
    """The request kinds and the statuses one history shows."""
    kinds: set[str] = set()
    statuses: set[str] = set()
    for event in history["events"]:
        signaled = event.get("workflowExecutionSignaledEventAttributes")
        if signaled:
            kinds.update(_kinds(signaled.get("input", {})))
        accepted = event.get("workflowExecutionUpdateAcceptedEventAttributes")
        if accepted:
            kinds.update(_kinds(accepted["acceptedRequest"]["input"].get("args", {})))
        for key, value in _payloads(event):
            if key == contract.STATUS.name and value in STATUSES:
                statuses.add(value)
            else:
                statuses.update(_subscription_statuses(value))
    return kinds, statuses


def missing(files: Iterable[Path], kinds: set[str] | None = None) -> dict[str, set[str]]:
    """What no history among ``files`` shows: request kinds and statuses."""
    found_kinds: set[str] = set()
    found_statuses: set[str] = set()
    for path in files:
        k, s = seen(json.loads(path.read_text()))
        found_kinds |= k
        found_statuses |= s
    return {"requests": (request_kinds() if kinds is None else kinds) - found_kinds,
            "statuses": STATUSES - found_statuses}


NEWEST = sorted(CURRENT.glob("*.json"))


def scenario(path: Path) -> str:
    return path.stem.rsplit("-run", 1)[0]


def test_every_request_type_and_status_has_a_recorded_history():
    assert NEWEST, f"no histories in {CURRENT}"
    assert missing(NEWEST) == {"requests": set(), "statuses": set()}, (
        "record a scenario that shows these in tests/replay/record.py (README: \"Changing the "
        "workflow safely\")")


def test_request_kinds_come_from_the_request_union():
    assert request_kinds() == {"cancel", "reactivate", "postpone", "payment_method_updated",
                               "pause", "resume", "change_plan", "accept_retention_offer",
                               "retry"}


@pytest.mark.parametrize(("without", "expected"), [
    ({"unpaid_recovers_late", "v1_unpaid_recovers_late"},
     {"requests": set(), "statuses": {"unpaid"}}),
    ({"trial"}, {"requests": set(), "statuses": {"trialing"}}),
    ({"scheduled_start"}, {"requests": set(), "statuses": {"scheduled"}}),
    ({"retention_offer"}, {"requests": {"accept_retention_offer"}, "statuses": set()}),
    ({"change_plan", "change_plan_reactivates", "upgrade_now", "v3_upgrade_at_period_end"},
     {"requests": {"change_plan"}, "statuses": set()}),
    ({"pause_now_resume_at", "pause_resume_keep", "pause_resume_reset"},
     {"requests": {"pause", "resume"}, "statuses": {"paused"}}),
    ({"held_charge", "held_refund"}, {"requests": {"retry"}, "statuses": set()}),
])
def test_a_missing_scenario_is_reported(without: set[str], expected: dict[str, set[str]]):
    assert without <= {scenario(p) for p in NEWEST}
    assert missing([p for p in NEWEST if scenario(p) not in without]) == expected


class Refund(Cancel):
    """A request type nobody recorded yet."""

    kind: Literal["refund"] = "refund"  # type: ignore[assignment]


def test_a_new_request_type_is_reported_until_recorded():
    extended = Annotated[get_args(Request)[0] | Refund, Field(discriminator="kind")]
    assert missing(NEWEST, request_kinds(extended)) == {"requests": {"refund"},
                                                        "statuses": set()}
