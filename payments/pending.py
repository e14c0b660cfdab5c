"""Pending charges: what a subscription accumulates during a term and settles at its end.

Two kinds: ``one_off`` items "to be collected at end of term" and ``metered`` usage. At an
end-of-term cancellation all are billed in one final charge (D7); at an immediate cancellation
metered usage is discarded and one-off items stay pending, billed only if explicitly collected
later (D6). Each collect/discard request stamps the items it resolved with its idempotency key,
so a retried request sees exactly the items of its first run.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from invoices.types import InvoiceLine
from payments import store
from payments.errors import PaymentRequestError
from payments.models import PendingCharge
from payments.records import OpenCharges, PendingChargeRecord
from payments.types import (ChargeRequest, ChargeResult, PendingChargesRequest,
                              PendingChargesResult)


class PendingCharges:
    """Part of PaymentService (payments.service)."""

    engine: Engine
    charge: Callable[[ChargeRequest], ChargeResult]

    def add_pending_charge(self, idempotency_key: str, subscription_id: str, customer_id: str,
                           amount: int, currency: str, description: str | None = None,
                           kind: str = "one_off") -> PendingChargeRecord:
        """An item billed at the end of the term (D7): ``one_off`` ("collect at end of term")
        or ``metered`` (usage reported in the period). Idempotent by key."""
        if amount < 0 or kind not in ("one_off", "metered"):
            raise PaymentRequestError(f"invalid pending charge ({kind}, {amount})")
        row = store.find_or_insert(
            self.engine, PendingCharge, idempotency_key,
            lambda: PendingCharge(idempotency_key=idempotency_key,
                                  subscription_id=subscription_id, customer_id=customer_id,
                                  amount=amount, currency=currency, description=description,
                                  kind=kind),
            lambda r: (r.subscription_id, r.amount, r.currency, r.kind)
            == (subscription_id, amount, currency, kind))
        return PendingChargeRecord.model_validate(row, from_attributes=True)

    def collect_pending_charges(self, request: PendingChargesRequest) -> PendingChargesResult:
        """D7: one final charge for every pending item (one-off and metered) in the request's
        currency. Items are marked collected *before* charging, whatever the charge's outcome:
        the subscription ends anyway and a declined final invoice is not retried."""
        items = store.resolve_pending(self.engine, request.subscription_id, request.currency,
                                      request.idempotency_key, ("one_off", "metered"),
                                      "collected")
        total = sum(i.amount for i in items)
        if total == 0:
            return PendingChargesResult(amount=0, items=len(items))
        result = self.charge(ChargeRequest(
            idempotency_key=f"{request.idempotency_key}:charge",
            subscription_id=request.subscription_id, customer_id=request.customer_id,
            amount=total, currency=request.currency,
            description=f"Final invoice: {len(items)} pending item(s)",
            purpose="final_invoice", period_key=request.period_key,
            lines=[InvoiceLine(kind="pending_item", description=i.description or i.kind,
                               amount=i.amount) for i in items]))
        return PendingChargesResult(amount=total, items=len(items), charge=result)

    def discard_pending_charges(self, request: PendingChargesRequest) -> PendingChargesResult:
        """D6: metered usage of the period is discarded. One-off pending items stay pending
        ("pending invoice items stay, and are billed only if an invoice is generated for them
        explicitly"): a later collect_pending_charges bills them."""
        items = store.resolve_pending(self.engine, request.subscription_id, request.currency,
                                      request.idempotency_key, ("metered",), "discarded")
        return PendingChargesResult(amount=sum(i.amount for i in items), items=len(items))

    def pending_charges(self, subscription_id: str,
                        status: str = "pending") -> list[PendingChargeRecord]:
        return [PendingChargeRecord.model_validate(r, from_attributes=True)
                for r in store.pending_items(self.engine, subscription_id, status)]

    def open_charges(self, subscription_id: str) -> OpenCharges:
        items = store.pending_items(self.engine, subscription_id, "pending")
        attempts, amount = store.open_attempt_totals(self.engine, subscription_id)
        return OpenCharges(pending_items=len(items), pending_amount=sum(i.amount for i in items),
                           open_attempts=attempts, open_amount=amount)
