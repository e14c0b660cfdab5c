"""Wallet rules that depend on the customer's subscriptions, applied around ledger calls.

- D18/D13: a customer on the free plan (no paid subscription that is still alive: none, only
  the free plan, or every paid one ended) gets the free daily allowance, once per UTC day
  (idempotent by day). A trial, a dunning grace or a pause is not the free plan.
- D19: after a debit leaves the balance under the configured threshold while a paid term runs
  (active or cancelling), the default payment method is charged for the configured amount.
  The idempotency key is derived from the debit that crossed the threshold, so a retried debit
  never recharges twice; after the term ends nothing is recharged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from activities.types import ChargeRequest
from config.plans import PlanCatalog
from domain import credits
from domain.credits import in_paid_term
from eventlog import store as eventlog
from ledger.results import EntryResult
from ledger.service import Ledger
from payments.errors import PaymentError
from payments.service import PaymentService

log = logging.getLogger("api.wallet")


@dataclass(frozen=True)
class Standing:
    """Where the customer's subscriptions leave the wallet, read once per request."""

    paid_term: bool  # D19: a paid subscription is active or cancelling
    free_plan: bool  # D13/D18: no paid subscription can still give paid access


def read_standing(engine: Engine, catalog: PlanCatalog, customer_id: str) -> Standing:
    def is_free(plan_id: str) -> bool:  # an unknown plan id counts as paid
        plan = catalog.get(plan_id)
        return plan is not None and plan.is_free

    subs = [(view.status, is_free(view.plan_id))
            for view in eventlog.customer_views(engine, customer_id)]
    return Standing(paid_term=any(in_paid_term(status) and not free for status, free in subs),
                    free_plan=credits.on_free_plan(subs))


def grant_free_daily_if_due(ledger: Ledger, standing: Standing, customer_id: str,
                            now: datetime) -> None:
    if standing.free_plan:
        ledger.grant_free_daily(customer_id, now.date())


def auto_recharge_after(debit: EntryResult, ledger: Ledger, payments: PaymentService,
                        standing: Standing, now: datetime,
                        currency: str = "usd", unit_price: int = 1) -> EntryResult | None:
    """D19: charge and credit a recharge when the debit crossed the threshold. A declined
    or failed recharge leaves the debit as it is (it already succeeded) and is logged."""
    customer_id = debit.customer_id
    due = ledger.auto_recharge_due(customer_id, now, standing.paid_term)
    if due <= 0:
        return None
    key = f"{customer_id}:auto_recharge:{debit.entry_id}"
    try:
        charge = payments.charge(ChargeRequest(
            idempotency_key=key, subscription_id="", customer_id=customer_id,
            amount=due * unit_price, currency=currency, description=f"auto-recharge {due} credits",
            purpose="auto_recharge", period_key="auto_recharge"))
    except PaymentError as err:
        log.warning("auto-recharge for %s failed: %s", customer_id, err)
        return None
    if charge.status != "succeeded":
        log.warning("auto-recharge for %s declined: %s", customer_id, charge.decline_code)
        return None
    return ledger.purchase_topup(customer_id, due, key, now)
