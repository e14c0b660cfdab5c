"""Payments reconciliation: what a crash, an outage or a bug left between Stripe, the charge
records and the ledger. It repairs what can be repaired idempotently and reports the rest, one
JSON log line per finding; the worker runs it on a Temporal Schedule, `subs reconcile` once.

Three checks, each on its own (one failing does not hide the others' findings):

1. Charges left ``pending`` longer than ``settle_after``. When the stored PaymentIntent already
   has an outcome at Stripe (paid, declined, canceled), the charge path (PaymentService.charge,
   same key) records it: on such an intent it only reads and settles, it never confirms. An
   intent never confirmed, or none at all, is reported: whether money should still move is
   its workflow's decision (a renewal retrying, a purchase waiting for Stripe), not ours.
2. Succeeded purchase charges (top-up, auto-recharge) whose credits are not in the ledger:
   granted under the purchase's key with what the charge record says (domain.purchases), as
   the purchase workflow would. If the workflow gets there too, the second write replays the
   first.
3. PaymentIntents at Stripe created within ``lookback`` that no charge record knows: reported.
   A crash between creating an intent and storing its id leaves one that was never confirmed
   (no money moved); a paid one is money without a record.

Anything younger than ``settle_after`` is taken to be in flight and left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import stripe
from pydantic import BaseModel
from sqlalchemy import exists, func, select
from sqlalchemy.exc import SQLAlchemyError

from config.settings import ReconcileSettings
from domain import purchases
from domain.errors import RequestInvalid
from ledger.models import CreditEntry
from ledger.service import Ledger
from payments.charging import intent_outcome
from payments.errors import PaymentError
from payments.gateway import StripeGateway, classify
from payments.models import ChargeAttempt
from payments.service import PaymentService
from payments.types import ChargeRequest
from store.engine import session_scope
from store.types import utcnow

log = logging.getLogger("payments.reconcile")

Kind = Literal["stuck_charge", "uncredited_purchase", "unknown_intent"]
Action = Literal["repaired", "would_repair", "reported"]
PAGE_SIZE = 100


class Finding(BaseModel):
    kind: Kind
    action: Action
    detail: str
    idempotency_key: str | None = None
    customer_id: str | None = None
    payment_intent_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    status: str | None = None  # the intent's status at Stripe, or the charge's outcome

    def line(self) -> str:
        """One line for a terminal: what was done, to what, and why."""
        facts = " ".join(f"{name}={value}" for name, value in (
            ("key", self.idempotency_key), ("customer", self.customer_id),
            ("intent", self.payment_intent_id), ("amount", self.amount),
            ("currency", self.currency), ("status", self.status)) if value is not None)
        return f"{self.action:12} {self.kind:19} {facts}: {self.detail}"


class ReconcileReport(BaseModel):
    at: datetime
    dry_run: bool
    checked: dict[str, int] = {}  # per check: records or intents examined
    findings: list[Finding] = []
    errors: list[str] = []  # checks that could not finish (their findings so far are kept)

    def summary(self) -> str:
        counts = {action: sum(f.action == action for f in self.findings)
                  for action in ("repaired", "would_repair", "reported")}
        checked = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.checked.items())
        return (f"reconciled at {self.at.isoformat()}{' (dry run)' if self.dry_run else ''}: "
                f"checked {checked or 'nothing'}; {counts['repaired']} repaired, "
                f"{counts['would_repair']} to repair, {counts['reported']} reported, "
                f"{len(self.errors)} errors")


@dataclass(frozen=True)
class ListedIntent:
    id: str
    status: str
    amount: int
    currency: str
    created: datetime
    metadata: dict


class Reconciler:
    def __init__(self, payments: PaymentService, ledger: Ledger, settings: ReconcileSettings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.payments = payments
        self.ledger = ledger
        self.settings = settings
        self.clock = clock

    def run(self, dry_run: bool = False) -> ReconcileReport:
        now = self.clock()
        report = ReconcileReport(at=now, dry_run=dry_run)
        # Pending charges first: one settled as paid now is credited by the next check.
        for name, check in (("pending_charges", self._pending_charges),
                            ("succeeded_purchases", self._uncredited_purchases),
                            ("stripe_intents", self._unknown_intents)):
            report.checked[name] = 0
            try:
                for checked, finding in check(now, dry_run):
                    report.checked[name] += checked
                    if finding is not None:
                        _log(finding, dry_run)
                        report.findings.append(finding)
            except (PaymentError, SQLAlchemyError) as err:
                report.errors.append(f"{name}: {type(err).__name__}: {_one_line(err)}")
                log.error("reconcile check %s did not finish: %s", name, err,
                          extra={"check": name, "error_type": type(err).__name__})
        log.info(report.summary(), extra={"dry_run": dry_run, "findings": len(report.findings),
                                          "errors": len(report.errors)})
        return report

    # 1. Pending charges --------------------------------------------------------------------

    def _pending_charges(self, now: datetime, dry_run: bool
                         ) -> Iterator[tuple[int, Finding | None]]:
        with session_scope(self.payments.engine) as session:
            rows = list(session.execute(select(ChargeAttempt).where(
                ChargeAttempt.status == "pending",
                ChargeAttempt.updated_at < now - self.settings.settle_after)
                .order_by(ChargeAttempt.id)).scalars())
        for row in rows:
            yield 1, self._pending_charge(row, dry_run)

    def _pending_charge(self, row: ChargeAttempt, dry_run: bool) -> Finding:
        found = _charge_finding(row, "stuck_charge")
        if row.payment_intent_id is None:
            return found(detail="no PaymentIntent was stored, so nothing was charged; its "
                         "workflow creates one when it retries")
        try:
            intent = self.payments.gateway.retrieve_payment_intent(row.payment_intent_id)
        except PaymentError as err:
            if err.retryable:
                raise  # Stripe is down: the check stops, the next run tries again
            return found(detail=f"Stripe refused to show its intent ({type(err).__name__}, "
                         f"HTTP {err.http_status})")
        outcome = intent_outcome(intent)
        if outcome is None:
            return found(status=intent.status, detail=(
                "Stripe is still processing it" if intent.status == "processing" else
                "the intent was never confirmed, so nothing was charged; its workflow "
                "confirms it when it retries"))
        if dry_run:
            return found(action="would_repair", status=intent.status,
                         detail=f"would record the outcome Stripe has: {outcome[0]}")
        result = self.payments.charge(_request(row))
        return found(action="repaired", status=result.status,
                     detail=f"recorded the outcome Stripe has ({intent.status})")

    # 2. Succeeded purchases without their credits --------------------------------------------

    def _uncredited_purchases(self, now: datetime, dry_run: bool
                              ) -> Iterator[tuple[int, Finding | None]]:
        # Purchases are charged with subscription_id "" (CreditPurchase.charge_request), which
        # lets the (subscription_id, status) index find them.
        paid = (ChargeAttempt.subscription_id == "", ChargeAttempt.status == "succeeded",
                ChargeAttempt.purpose.in_(purchases.PURPOSES))
        with session_scope(self.payments.engine) as session:
            checked = session.execute(select(func.count()).where(*paid)).scalar_one()
            rows = list(session.execute(select(ChargeAttempt).where(
                *paid, ChargeAttempt.created_at < now - self.settings.settle_after,
                ~exists().where(CreditEntry.idempotency_key == ChargeAttempt.idempotency_key))
                .order_by(ChargeAttempt.id)).scalars())
        yield int(checked), None
        for row in rows:
            yield 0, self._credit(row, dry_run)

    def _credit(self, row: ChargeAttempt, dry_run: bool) -> Finding:
        found = _charge_finding(row, "uncredited_purchase", status=row.status)
        credits = purchases.credits_bought(row.amount)
        expires_at = purchases.expiry(row.period_key)
        if dry_run:
            return found(action="would_repair",
                         detail=f"paid, not credited: would grant {credits} purchased credits")
        try:
            self.ledger.purchase_topup(row.customer_id, credits, row.idempotency_key,
                                       row.created_at, expires_at)
        except RequestInvalid as err:  # e.g. the key already holds a different entry
            return found(detail=f"paid, not credited, and the ledger refused the grant "
                         f"({err.code}): {err.message}")
        return found(action="repaired", detail=f"paid, not credited: granted {credits} "
                     "purchased credits under the purchase's key")

    # 3. PaymentIntents at Stripe that no record knows ----------------------------------------

    def _unknown_intents(self, now: datetime, dry_run: bool
                         ) -> Iterator[tuple[int, Finding | None]]:
        oldest, newest = now - self.settings.lookback, now - self.settings.settle_after
        since = oldest if self.settings.stripe_created_filter else None
        for page in intent_pages(self.payments.gateway, since):
            window = [i for i in page if oldest <= i.created <= newest]
            known = self._known([i.id for i in window])
            yield len(window), None
            for intent in window:
                if intent.id not in known:
                    yield 0, _unknown(intent)

    def _known(self, intent_ids: list[str]) -> set[str]:
        if not intent_ids:
            return set()
        with session_scope(self.payments.engine) as session:
            return set(session.execute(select(ChargeAttempt.payment_intent_id).where(
                ChargeAttempt.payment_intent_id.in_(intent_ids))).scalars())


def intent_pages(gateway: StripeGateway, created_since: datetime | None
                 ) -> Iterator[list[ListedIntent]]:
    """Stripe's PaymentIntents, a page at a time, through the gateway's client (rate-limited,
    SDK retries off, errors classified as the gateway does). It belongs in StripeGateway as
    ``list_payment_intents``; it lives here while that module is being changed elsewhere."""
    params: dict = {"limit": PAGE_SIZE}
    if created_since is not None:
        params["created"] = {"gte": int(created_since.timestamp())}
    while True:
        try:
            page = gateway.client.v1.payment_intents.list(params)
        except stripe.StripeError as err:
            raise classify(err) from err
        items = [_listed(pi.to_dict()) for pi in page.data]
        if items:
            yield items
        if not page.has_more or not items:
            return
        params["starting_after"] = items[-1].id


def _listed(pi: dict) -> ListedIntent:
    return ListedIntent(id=pi["id"], status=pi["status"], amount=int(pi["amount"]),
                        currency=pi["currency"],
                        created=datetime.fromtimestamp(int(pi["created"]), UTC),
                        metadata=dict(pi.get("metadata") or {}))


def _unknown(intent: ListedIntent) -> Finding:
    paid = intent.status in ("succeeded", "processing", "requires_capture")
    return Finding(
        kind="unknown_intent", action="reported", payment_intent_id=intent.id,
        idempotency_key=intent.metadata.get("idempotency_key"),
        customer_id=intent.metadata.get("customer_id"), amount=intent.amount,
        currency=intent.currency, status=intent.status,
        detail=("money moved at Stripe without a charge record here: find its origin, then "
                "refund it or record it" if paid else
                "no charge record here and no money moved (e.g. left by a crash between "
                "creating and storing an intent); it can be canceled"))


def _charge_finding(row: ChargeAttempt, kind: Kind, **fixed) -> Callable[..., Finding]:
    def found(*, detail: str, action: Action = "reported", **values) -> Finding:
        return Finding(kind=kind, action=action, detail=detail,
                       idempotency_key=row.idempotency_key, customer_id=row.customer_id,
                       payment_intent_id=row.payment_intent_id, amount=row.amount,
                       currency=row.currency, **{**fixed, **values})
    return found


def _request(row: ChargeAttempt) -> ChargeRequest:
    """The charge's own request, rebuilt from its record: the charge path finds the record by
    key and carries on from where it stopped."""
    return ChargeRequest(idempotency_key=row.idempotency_key,
                         subscription_id=row.subscription_id, customer_id=row.customer_id,
                         amount=row.amount, currency=row.currency,
                         description=row.description or "", purpose=row.purpose,
                         period_key=row.period_key)


def _one_line(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _log(finding: Finding, dry_run: bool) -> None:
    log.warning("reconcile %s %s", finding.action, finding.kind,
                extra={**finding.model_dump(exclude_none=True), "dry_run": dry_run})
