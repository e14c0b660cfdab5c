"""Wallet rules that depend on the customer's subscriptions, applied around ledger calls.

- D18/D13: a customer on the free plan (no paid subscription that is still alive: none, only
  the free plan, or every paid one ended) gets the free daily allowance, once per UTC day
  (idempotent by day). A trial, a dunning grace or a pause is not the free plan.
- D19: after a debit leaves the balance under the configured threshold while a paid term runs
  (active or cancelling), the default payment method is charged for the configured amount, by
  a credit purchase workflow (workflows.credit_purchase) the API starts without waiting. The
  idempotency key is derived from the debit that crossed the threshold, so a retried debit
  never recharges twice; after the term ends nothing is recharged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from activities.types import CreditPurchase
from config.plans import PlanCatalog
from domain import credits, purchases
from domain.credits import in_paid_term
from eventlog import store as eventlog
from ledger.results import EntryResult
from ledger.service import Ledger
from payments.service import PaymentService


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


def recharge_due(debit: EntryResult, ledger: Ledger, payments: PaymentService,
                 standing: Standing, now: datetime) -> CreditPurchase | None:
    """D19: the recharge the debit calls for, if any, with its amount fixed now. A retried
    debit finds the charge of its first attempt and buys what that one was buying, whatever
    the balance says now, so a charge that succeeded is always credited."""
    customer_id = debit.customer_id
    key = purchases.auto_recharge_key(customer_id, debit.entry_id)
    earlier = payments.get_charge(key)
    credits = (purchases.credits_bought(earlier.amount) if earlier is not None
               else ledger.auto_recharge_due(customer_id, now, standing.paid_term))
    if credits <= 0:
        return None
    return CreditPurchase(idempotency_key=key, customer_id=customer_id, purpose="auto_recharge",
                          credits=credits, amount=purchases.price(credits),
                          currency=purchases.CURRENCY, at=now)
