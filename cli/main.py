"""`subs`: the operator CLI. It talks to Temporal and the database directly (operators run it
next to the worker), through the same client operations the HTTP API uses, so a refusal reads
the same everywhere."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import get_settings
from domain.errors import RequestRefused
from domain.model import Actor, Status
from domain.requests import (AcceptRetentionOffer, Cancel, ChangePlan, Pause, Postpone,
                             Reactivate, Resume, Retry)
from eventlog import store as eventlog
from store.engine import get_engine
from workflows import client_ops, contract
from workflows.connection import connect, payload_codec

app = typer.Typer(help="Operate subscriptions: list, show, events, credits, invoices, cancel, "
                  "reactivate, postpone, pause, resume, change-plan; reconcile payments; dead "
                  "webhook deliveries; `demo` seeds the local stack.",
                  no_args_is_help=True)
OPERATOR = Actor(kind="operator", id="cli")


def _run(coro) -> Any:
    return asyncio.run(coro)


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


async def _send(subscription_id: str, request) -> None:
    client = await connect(get_settings())
    try:
        state = await client_ops.send(client, subscription_id, request)
    except RequestRefused as refused:
        typer.secho(f"refused ({refused.code}): {refused.message}", fg="red", err=True)
        _exit(2)
    _print(_summary(state))
    _exit(0)


def _build(model, **fields):
    """The request, or one line naming the field that is wrong (exit 2)."""
    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        _fail(f"invalid {where}: {first['msg']}", 2)


def _fail(message: str, code: int) -> None:
    typer.secho(message, fg="red", err=True)
    _exit(code)


def _exit(code: int) -> None:
    """End the process without interpreter finalization: the Temporal client's Rust threads
    can otherwise abort a short-lived process at exit with SIGABRT ("PyGILState_Release ...
    finalizing", temporalio/sdk-python#300); seen here on about one refused command in ten."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _summary(state) -> dict[str, Any]:
    """The snapshot with the portal's renewal line; while a failed payment is retried
    (D9) the line names the next retry instead of the renewal date, which may be past."""
    data = state.snapshot()
    data["renewal"] = state.renewal_line
    dunning = state.dunning
    if dunning is not None and not state.ended and state.status in (Status.PAST_DUE,
                                                                    Status.INCOMPLETE):
        attempt = f"attempt {dunning.attempts + 1} of {state.policy.max_attempts}"
        data["dunning"] = {"failed_attempts": dunning.attempts,
                           "max_attempts": state.policy.max_attempts,
                           "next_retry_at": dunning.next_retry_at and
                           dunning.next_retry_at.isoformat(),
                           "grace_until": dunning.grace_until.isoformat(),
                           "last_decline_code": dunning.last_decline_code}
        data["renewal"] = (f"Retrying payment on {dunning.next_retry_at.isoformat()} ({attempt})"
                           if dunning.next_retry_at else f"Retrying payment now ({attempt})")
    return data


@app.command("list")
def list_(
    organization: Annotated[str, typer.Option(help="organization id")],
    status: Annotated[str | None, typer.Option(help="e.g. active, non_renewing")] = None,
    customer: Annotated[str | None, typer.Option()] = None,
    plan: Annotated[str | None, typer.Option()] = None,
    limit: int = 50,
) -> None:
    """List subscriptions of an organization from the read model."""
    if status is not None and status not in {s.value for s in Status}:
        _fail(f"no status {status!r}; choose one of {', '.join(s.value for s in Status)}", 2)
    views = eventlog.list_views(get_engine(get_settings().database_url), organization,
                                status=status, customer_id=customer, plan_id=plan, limit=limit)
    for v in views:
        line = v.renewal_line or (f"ended {v.ended_at.isoformat()}" if v.ended_at else "")
        if v.status == Status.PAST_DUE and v.grace_until is not None:  # D9: the date is due
            line = f"payment failed, retrying; access until {v.grace_until.isoformat()}"
        typer.echo(f"{v.id:24} {v.status:13} {v.customer_id:20} {v.plan_id:14} {line}")


@app.command()
def show(subscription_id: str) -> None:
    """The live state of one subscription (queried from its workflow)."""
    async def go():
        return await client_ops.get_state(await connect(get_settings()), subscription_id)
    _print(_summary(_run(go())))
    _exit(0)  # see _exit: the Temporal client can abort interpreter shutdown


HELD_QUERY = f'{contract.HELD.name} = true AND ExecutionStatus = "Running"'


async def _held_ids(client) -> AsyncIterator[str]:
    """The ids of the subscriptions the visibility store lists as held."""
    async for wf in client.list_workflows(HELD_QUERY):
        yield contract.subscription_id_of(wf.id)


@app.command()
def held() -> None:
    """Subscriptions waiting for an operator's retry, with what failed and why."""
    async def go() -> list[str]:
        client = await connect(get_settings())
        lines = []
        async for sub_id in _held_ids(client):
            hold = (await client_ops.get_state(client, sub_id)).hold
            if hold is not None:
                lines.append(f"{sub_id:24} {hold.code:24} {hold.activity:24} "
                             f"since {hold.since.isoformat()}  {hold.message}"
                             + (f"  (Stripe request {hold.stripe_request_id})"
                                if hold.stripe_request_id else ""))
        return lines
    for line in _run(go()):
        typer.echo(line)
    _exit(0)


@app.command()
def retry(subscription_id: Annotated[str | None, typer.Argument()] = None,
          all_held: Annotated[bool, typer.Option("--all-held", help=(
              "every held subscription"))] = False) -> None:
    """Run a held subscription's failed call again, once its cause is fixed.

    Same idempotency key: nothing that already succeeded happens twice."""
    if (subscription_id is None) == (not all_held):
        _fail("name a subscription id or pass --all-held (not both)", 2)
    if subscription_id is not None:
        _run(_send(subscription_id, Retry(requested_by=OPERATOR)))

    async def go() -> int:
        client = await connect(get_settings())
        failed = 0
        async for sub_id in _held_ids(client):
            try:
                state = await client_ops.send(client, sub_id, Retry(requested_by=OPERATOR))
                typer.echo(f"{sub_id}: retried, now {state.status.value}")
            except RequestRefused as refused:  # e.g. retried meanwhile by someone else
                typer.echo(f"{sub_id}: {refused.code}: {refused.message}")
                failed += refused.code != "not_held"
        return failed
    _exit(1 if _run(go()) else 0)


@app.command()
def events(subscription_id: str, limit: int = 100) -> None:
    """The D8 events of a subscription."""
    engine = get_engine(get_settings().database_url)
    if eventlog.get_view(engine, subscription_id) is None:
        _fail(f"no subscription {subscription_id}", 1)
    rows = eventlog.list_events(engine, subscription_id, limit=limit)
    for e in rows:
        who = f"{e.request.kind}:{e.request.id}" if e.request else "automatic"
        typer.echo(f"{e.created.isoformat()} {e.type:36} {who:22} {e.data['status']}")


webhooks = typer.Typer(help="Outbound webhook deliveries: the dead ones, retried by hand.",
                       no_args_is_help=True)
app.add_typer(webhooks, name="webhooks")


@webhooks.command("dead")
def webhooks_dead(
    endpoint: Annotated[str | None, typer.Option(help="one endpoint (we_...)")] = None,
    limit: int = 100,
) -> None:
    """Deliveries given up after the last attempt, one line each: id, endpoint, event, type,
    attempts, last error. Retry them with `subs webhooks retry`."""
    from notifications import deliveries

    engine = get_engine(get_settings().database_url)
    for row in deliveries.list_deliveries(engine, endpoint_id=endpoint,
                                          status=deliveries.DEAD, limit=limit):
        kind = (row.payload.get("event") or {}).get("type", "")
        typer.echo(f"{row.id:<8} {row.recipient:24} {row.event_id:40} {kind:34} "
                   f"attempts={row.attempts}  {row.last_error or ''}")


@webhooks.command("retry")
def webhooks_retry(
    delivery_id: Annotated[str | None, typer.Argument(help="a dead delivery's id")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="every dead delivery")] = False,
    endpoint: Annotated[str | None, typer.Option(help="with --all-dead: one endpoint")] = None,
) -> None:
    """Queue dead deliveries again (due now, fresh attempts); the worker's dispatcher sends
    them as usual."""
    from datetime import UTC

    from notifications import deliveries

    if (delivery_id is None) == (not all_dead):
        _fail("name a delivery id or pass --all-dead (not both)", 2)
    engine = get_engine(get_settings().database_url)
    now = datetime.now(UTC)
    if delivery_id is not None:
        if not delivery_id.isdigit():
            _fail(f"not a delivery id: {delivery_id!r} (a number, see `subs webhooks dead`)", 2)
        row = deliveries.get_delivery(engine, int(delivery_id))
        if row is None:
            _fail(f"no webhook delivery {delivery_id}", 1)
        if not deliveries.retry_dead(engine, int(delivery_id), now):
            _fail(f"delivery {delivery_id} is {row.status}, not dead: nothing to retry", 1)
        typer.echo(f"{delivery_id}: queued again for {row.recipient} ({row.event_id})")
        return
    retried = 0
    while rows := deliveries.list_deliveries(engine, endpoint_id=endpoint,
                                             status=deliveries.DEAD, limit=500):
        retried += sum(deliveries.retry_dead(engine, r.id, now) for r in rows if r.id)
    typer.echo(f"{retried} dead deliveries queued again")


@app.command()
def cancel(
    subscription_id: str,
    mode: Annotated[str, typer.Option(help="immediately | at_period_end | at_date")] =
    "at_period_end",
    at: Annotated[datetime | None, typer.Option(help="cancel_at for mode at_date (UTC ISO)")] =
    None,
    refund: Annotated[str, typer.Option(help="none | prorated | full")] = "none",
    comment: str | None = None,
) -> None:
    """Cancel immediately, at period end, or at a date."""
    request = _build(Cancel, mode=mode, cancel_at=at, refund=refund, comment=comment,
                     requested_by=OPERATOR)
    _run(_send(subscription_id, request))


@app.command()
def reactivate(subscription_id: str) -> None:
    """Remove a scheduled cancellation (before it takes effect)."""
    _run(_send(subscription_id, Reactivate(requested_by=OPERATOR)))


@app.command("change-plan")
def change_plan(
    subscription_id: str,
    plan: Annotated[str, typer.Argument(help="plan id from config/plans.yaml")],
    preview: Annotated[bool, typer.Option(
        "--preview", help="show what the change would charge and when; change nothing")] = False,
    proration_date: Annotated[datetime | None, typer.Option(
        "--proration-date", help="the `at` of a preview (UTC ISO): prorate from then, so the "
        "charge equals the preview")] = None,
) -> None:
    """Change the plan: an upgrade (same term, higher price) now, with the prorated difference
    charged at once; any other change at the next renewal (D11)."""
    from datetime import UTC

    from config.plans import load_catalog
    from domain import lifecycle

    settings = get_settings()
    target = load_catalog(settings.plans_file).get(plan)
    if target is None:
        _fail(f"invalid plan: no such plan {plan!r} in {settings.plans_file}", 2)
    if not preview:
        request = _build(ChangePlan, plan=target, proration_date=proration_date,
                         requested_by=OPERATOR)
        _run(_send(subscription_id, request))

    async def go():
        return await client_ops.get_state(await connect(get_settings()), subscription_id)
    try:
        quote = lifecycle.preview_change(_run(go()), target, datetime.now(UTC))
    except RequestRefused as refused:
        _fail(f"refused ({refused.code}): {refused.message}", 2)
    _print(quote.model_dump(mode="json"))
    typer.secho(f"confirm with: subs change-plan {subscription_id} {plan} --proration-date "
                f"{quote.model_dump(mode='json')['at']}", err=True)
    _exit(0)


@app.command("accept-offer")
def accept_offer(subscription_id: str) -> None:
    """D14: keep the subscription at the retention discount instead of cancelling."""
    _run(_send(subscription_id, AcceptRetentionOffer(requested_by=OPERATOR)))


@app.command()
def postpone(subscription_id: str,
             at: Annotated[datetime, typer.Option(help="new cancel_at (UTC ISO)")]) -> None:
    """Move a scheduled cancellation; extra time past the paid term is not charged (D5)."""
    request = _build(Postpone, cancel_at=at, requested_by=OPERATOR)
    _run(_send(subscription_id, request))


@app.command()
def pause(
    subscription_id: str,
    mode: Annotated[str, typer.Option(help="now | at_period_end")] = "at_period_end",
    resume_at: Annotated[datetime | None, typer.Option(
        "--resume-at", help="resume automatically then (UTC ISO)")] = None,
) -> None:
    """Pause (D12): no renewals, charges or access until resumed."""
    request = _build(Pause, mode=mode, resume_at=resume_at, requested_by=OPERATOR)
    _run(_send(subscription_id, request))


@app.command()
def resume(
    subscription_id: str,
    anchor: Annotated[str, typer.Option(help="keep (same renewal dates) | reset (new period "
                                        "now, charged)")] = "keep",
) -> None:
    """Resume a paused subscription, or remove a scheduled pause."""
    request = _build(Resume, anchor=anchor, requested_by=OPERATOR)
    _run(_send(subscription_id, request))


@app.command()
def credits(customer_id: str) -> None:
    """A customer's credit balances by kind, now (D15-D20)."""
    from datetime import UTC

    from ledger.service import Ledger

    from accounts.customers import get_customer
    from payments import store as payment_records

    settings = get_settings()
    engine = get_engine(settings.database_url)
    if (get_customer(engine, customer_id) is None
            and payment_records.get_customer(engine, customer_id) is None):
        _fail(f"no customer {customer_id}", 1)  # neither an account nor a payer of ours
    ledger = Ledger(engine, settings.credits)
    _print(ledger.balances(customer_id, datetime.now(UTC)).model_dump(mode="json"))


@app.command("customer-query")
def customer_query(customer_id: str) -> None:
    """The Web UI / `temporal workflow list --query` filter for one customer's workflows. With
    payload encryption on, the CustomerId search attribute holds a keyed pseudonym (one per
    key a workflow may have started under), not the id (README "Deployment security")."""
    codec = payload_codec(get_settings().codec)
    if codec is None:
        typer.echo(f'CustomerId = "{customer_id}"')
        return
    values = ", ".join(f'"{value}"' for value in codec.index_all(customer_id))
    typer.echo(f"CustomerId IN ({values})")


@app.command()
def invoices(
    customer_id: str,
    status: Annotated[str | None, typer.Option(
        help="open, paid, void or uncollectible")] = None,
    limit: int = 100,
    as_json: Annotated[bool, typer.Option("--json", help="the API's invoice objects")] = False,
) -> None:
    """A customer's invoices, newest first: number, status, kind, total, paid, period."""
    from accounts.customers import get_customer
    from invoices import store as invoice_store
    from invoices.pdf import money
    from payments import store as payment_records

    if status is not None and status not in ("open", "paid", "void", "uncollectible"):
        _fail(f"invalid status {status!r}: use open, paid, void or uncollectible", 2)
    engine = get_engine(get_settings().database_url)
    if (get_customer(engine, customer_id) is None
            and payment_records.get_customer(engine, customer_id) is None):
        _fail(f"no customer {customer_id}", 1)
    rows = invoice_store.list_invoices(engine, None, customer_id=customer_id, status=status,
                                       limit=limit)
    if as_json:
        _print([r.model_dump(mode="json") for r in rows])
        return
    for r in rows:
        start = next((line.period_start for line in r.lines if line.period_start), None)
        period = start.isoformat() if start else "-"
        typer.echo(f"{r.display_number} {r.status:13} {r.kind:14} "
                   f"{money(r.total, r.currency):>14} paid {money(r.amount_paid, r.currency):>14}"
                   f" {r.subscription_id or '-':24} {period} {r.id}")


@app.command()
def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report only, repair nothing")] =
    False,
) -> None:
    """Run the payments reconciliation job once (the worker's `reconcile-payments` schedule
    runs the same): stuck pending charges, paid purchases without credits, PaymentIntents at
    Stripe the database does not know. One line per finding; exit 1 only if a check failed."""
    from ledger.service import Ledger
    from payments.gateway import StripeGateway
    from payments.reconcile import Reconciler
    from payments.service import PaymentService
    from workflows.logs import configure as configure_logging

    try:
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)  # JSON lines on stderr
        logging.getLogger("stripe").setLevel(logging.WARNING)  # not a line per HTTP request
        engine = get_engine(settings.database_url)
        report = Reconciler(PaymentService(engine, StripeGateway(settings.stripe, engine=engine)),
                            Ledger(engine, settings.credits), settings.reconcile
                            ).run(dry_run=dry_run)
    except Exception as err:  # noqa: BLE001 - one line, never a traceback
        message = " ".join(str(err).split())
        typer.secho(f"reconcile failed: {type(err).__name__}: {message}", fg="red", err=True)
        raise typer.Exit(code=1) from None
    for finding in report.findings:
        typer.echo(finding.line())
    for error in report.errors:
        typer.secho(f"error        {error}", fg="red")
    typer.echo(report.summary())
    raise typer.Exit(code=1 if report.errors else 0)


@app.command()
def demo(
    scenario: Annotated[str | None, typer.Option(help=(
        "play a story and print what happens: dunning (a good first charge, then a "
        "declining card: past_due, retries, canceled) | cancel (at period end) | pause "
        "(now, resuming by itself) | trial (trialing, then the first charge)"))] = None,
    plan: Annotated[str, typer.Option(help="plan id from config/plans.yaml")] = "demo",
    card: Annotated[str, typer.Option(help=(
        "test card; 4000000000000341 declines every charge, the first one too (the "
        "subscription then never starts: use --scenario dunning to watch dunning)"))] =
    "4242424242424242",
    api_url: Annotated[str | None, typer.Option(help="default: the configured API")] = None,
    timeout: Annotated[float, typer.Option(help="seconds a scenario may take")] = 180.0,
) -> None:
    """Seed the local stack: an organization with an owner key, a customer with a test card,
    and a subscription on the short demo plan, all through the HTTP API; with --scenario,
    play a story on it."""
    import httpx

    from accounts import keys
    from cli import demo as stories
    from store.migrate import upgrade

    if scenario is not None and scenario not in stories.SCENARIOS:
        _fail(f"no scenario {scenario!r}; choose one of {', '.join(stories.SCENARIOS)}", 2)
    settings = get_settings()
    upgrade(settings.database_url)
    engine = get_engine(settings.database_url)
    org, raw_key = keys.create_organization_with_owner(engine, "Demo organization")
    base = api_url or f"http://{settings.api_host}:{settings.api_port}"
    headers = {"Authorization": f"Bearer {raw_key}"}
    body: dict[str, Any] = {"plan": plan}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        try:
            if scenario == "trial":
                body["trial_end"] = stories.trial_end(settings, plan).isoformat()
            customer_id = stories.check(http.post("/v1/customers", json={
                "email": "demo@example.com", "name": "Demo customer",
                "payment_method": card}))["id"]
            sub = stories.check(http.post("/v1/subscriptions",
                                           json={"customer": customer_id, **body}))
            portal = http.post("/v1/portal_sessions", json={"customer": customer_id,
                                                            "return_url": f"{base}/docs"})
        except httpx.TransportError as err:
            _fail(f"error: cannot reach the API at {base} ({type(err).__name__}): is `make "
                  "dev` running?", 1)
        except stories.DemoFailed as err:
            _fail(f"error: {err}", 1)
        sid = sub["id"]
        typer.echo(f"organization  {org.id}\nowner key     {raw_key}\n"
                   f"customer      {customer_id}\n"
                   f"subscription  {sid} ({sub['status']}, plan {plan})\n")
        if portal.status_code == 201:
            typer.echo(f"Portal:  {portal.json()['url']}\n         (the customer's page: "
                       "opens once, within 5 minutes)\n")
        if scenario is not None:
            typer.echo(f"scenario {scenario}:")
            try:
                _run(stories.play(settings, engine, http, scenario, customer_id, sub, timeout))
            except stories.DemoFailed as err:
                _fail(f"error: {err}", 1)
    typer.echo(f"\nWeb UI:  {stories.WEB_UI.format(id=sid)}")
    if scenario is None:
        typer.echo(f"Then:    subs show {sid}\n"
                   f"         subs cancel {sid} --mode at_period_end\n"
                   f"         subs reactivate {sid}\n"
                   f"         curl -H 'Authorization: Bearer {raw_key}' "
                   f"{base}/v1/subscriptions/{sid}")
    _exit(0)  # see _exit: the Temporal client can abort interpreter shutdown


def _one_line(err: BaseException) -> str:
    """What went wrong, in one line an operator can act on (never a traceback)."""
    settings = get_settings()
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        return f"not found: {' '.join(err.message.split())}"
    unreachable = (isinstance(err, RPCError) and err.status in (
        RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)) or (
        isinstance(err, RuntimeError) and "Failed client connect" in str(err))
    if unreachable:
        return (f"cannot reach Temporal at {settings.temporal.address}: is `make dev` "
                "(or the deployment) running?")
    if isinstance(err, OperationalError):
        return f"cannot use the database ({type(err.orig).__name__}): is it reachable?"
    return f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


def main() -> None:
    """The `subs` entry point: typer answers usage errors itself; anything else is one line."""
    try:
        app()
    except Exception as err:  # noqa: BLE001 - one clear line, never a traceback
        _fail(f"error: {_one_line(err)}", 1)


if __name__ == "__main__":
    main()
