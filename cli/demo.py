"""`subs demo`: seed the local stack, and play a story on the demo plan while printing what
happens (status changes, charges, emails) as it happens.

Everything goes through the public HTTP API (as a backend would), and the story is watched
from the outside: the D8 events and the notification outbox in the database, and the
workflow's `state` query for what only it knows (the next payment retry). Each story waits
on events, never on fixed sleeps, so it works for any plan length and dunning policy: with
`make dev` (a 20 s demo plan, 5 s retries) `dunning` ends in about 35 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import typer
from sqlalchemy.engine import Engine

from config.settings import Settings
from domain.model import Event
from eventlog import store as eventlog
from notifications import outbox
from workflows import client_ops
from workflows.connection import connect

SCENARIOS = ("dunning", "cancel", "pause", "trial")
DECLINING_CARD = "4000000000000341"  # attaches, then every charge is declined
WEB_UI = "http://127.0.0.1:8233/namespaces/default/workflows/subscription-{id}"

CREATED, UPDATED, DELETED = ("customer.subscription.created", "customer.subscription.updated",
                             "customer.subscription.deleted")
PAID, FAILED = "invoice.paid", "invoice.payment_failed"
PAUSED, RESUMED = "customer.subscription.paused", "customer.subscription.resumed"


class DemoFailed(Exception):
    """The story could not go on; the message is the one line to print."""


def _clock(value: str | datetime | None) -> str:
    if value is None:
        return "-"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(UTC).strftime("%H:%M:%S")


def describe(event: Event) -> str:
    """One line for an event: what changed, in the words of the customer portal."""
    data, before = event.data, event.previous_attributes
    if event.type == PAID:
        return f"charge succeeded: {before.get('amount_paid', 0) / 100:.2f}"
    if event.type == FAILED:
        return (f"charge declined ({before.get('decline_code') or 'declined'}), "
                f"attempt {before.get('attempt')}")
    if event.type == DELETED:
        reason = (data.get("cancellation_details") or {}).get("reason")
        return f"{before.get('status', '?')} -> {data['status']} (reason: {reason})"
    status = data["status"]
    moved = f"{before['status']} -> {status}" if "status" in before else f"status {status}"
    renewal = data.get("renewal") or {}
    line = renewal.get("line")  # "Renewing on <date>": the date as a clock time
    return f"{moved}; {line.rsplit(' ', 1)[0]} {_clock(renewal['date'])}" if line else moved


@dataclass
class Watcher:
    """Prints the subscription's new events and emails since the last look."""

    engine: Engine
    client: Any
    subscription_id: str
    started: float = field(default_factory=time.monotonic)
    seq: int = 0
    emails: dict[int, str] = field(default_factory=dict)  # id -> status:attempts printed

    def say(self, text: str) -> None:
        typer.echo(f"{time.monotonic() - self.started:6.1f}s  {text}")

    async def look(self) -> list[Event]:
        events = eventlog.list_events(self.engine, self.subscription_id, after_seq=self.seq)
        for event in events:
            self.seq += 1
            self.say(f"{event.type:32} {describe(event)}")
        if any(e.type == FAILED for e in events):
            await self._dunning()
        now = datetime.now(UTC)
        for message in outbox.list_messages(self.engine, subscription_id=self.subscription_id):
            seen = f"{message.status}:{message.attempts}"
            if message.channel != "email" or self.emails.get(message.id) == seen:
                continue
            if message.status != "pending":
                outcome = message.status
            elif message.last_error:
                outcome = f"not sent ({message.last_error[:80]}), retrying"
            elif message.claim_token is None and message.next_attempt_at > now:
                outcome = f"scheduled for {_clock(message.next_attempt_at)}"
            else:
                continue  # being sent: its outcome is the line to print
            self.say(f"{'email ' + message.kind:32} to {message.recipient}: {outcome}")
            self.emails[message.id] = seen
        return events

    async def _dunning(self) -> None:
        state = await client_ops.get_state(self.client, self.subscription_id)
        dunning = state.dunning
        if dunning is not None and dunning.next_retry_at is not None:
            self.say(f"{'':32} payment retry {_clock(dunning.next_retry_at)} (attempt "
                     f"{dunning.attempts + 1} of {state.policy.max_attempts}), access until "
                     f"{_clock(dunning.grace_until)}")

    async def until(self, done: Callable[[Event], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(done(e) for e in await self.look()):
                await asyncio.sleep(0.5)  # emails the last event queued
                await self.look()
                return
            await asyncio.sleep(0.25)
        raise DemoFailed(f"the story did not finish within {timeout:g} s: are the worker and "
                         "the API running (make dev)?")


def check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise DemoFailed(f"{response.request.method} {response.request.url.path} answered "
                         f"{response.status_code}: {' '.join(response.text.split())[:300]}")
    return response.json()


def _status(event: Event) -> str:
    return event.data["status"]


async def play(settings: Settings, engine: Engine, http: httpx.Client, scenario: str,
               customer_id: str, subscription: dict[str, Any], timeout: float) -> None:
    """Play ``scenario`` on a subscription just created (active, or trialing for `trial`)."""
    sid = subscription["id"]
    watcher = Watcher(engine, await connect(settings), sid)
    await watcher.look()
    half = (datetime.fromisoformat(subscription["current_period_end"])
            - datetime.fromisoformat(subscription["current_period_start"])) / 2
    if scenario == "dunning":
        check(http.post(f"/v1/customers/{customer_id}/payment_method",
                         json={"card_number": DECLINING_CARD}))
        watcher.say(f"card swapped to {DECLINING_CARD}: the next renewal is declined, "
                    "then retried until the subscription is canceled")
        await watcher.until(lambda e: e.type == DELETED, timeout)
    elif scenario == "cancel":
        check(http.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "at_period_end"}))
        watcher.say("canceled at period end: access until then, an ending notice before")
        await watcher.until(lambda e: e.type == DELETED, timeout)
    elif scenario == "pause":
        resume_at = datetime.now(UTC) + max(half, timedelta(seconds=3))
        check(http.post(f"/v1/subscriptions/{sid}/pause",
                         json={"mode": "now", "resume_at": resume_at.isoformat()}))
        watcher.say(f"paused now, resuming by itself at {_clock(resume_at)}")
        await watcher.until(lambda e: e.type == RESUMED, timeout)
    elif scenario == "trial":
        watcher.say("trialing: no charge until the trial ends")
        await watcher.until(lambda e: e.type == UPDATED and _status(e) == "active", timeout)
    state = await client_ops.get_state(watcher.client, sid)
    watcher.say(f"now {state.status.value}" + (
        f"; {state.renewal[0]} {_clock(state.renewal[1])}" if state.renewal else ""))


def trial_end(settings: Settings, plan_id: str) -> datetime:
    """Half the plan's period from now (at least 3 s): the `trial` story's trial end."""
    from config.plans import load_catalog
    from domain.periods import boundary

    plan = load_catalog(settings.plans_file).get(plan_id)
    if plan is None:
        raise DemoFailed(f"no plan {plan_id!r} in {settings.plans_file}")
    now = datetime.now(UTC)
    return now + max((boundary(now, plan.interval, plan.interval_count, 1) - now) / 2,
                     timedelta(seconds=3))
