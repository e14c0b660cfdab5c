"""/v1/customers/{id}/credits: balances, usage (strict debit) and purchased top-ups.

Caller keys are namespaced per customer and operation before they reach the ledger, whose keys
are global: one organization's key can neither collide with nor reveal another's entries.
Money moves only in credit purchase workflows (top-ups, auto-recharges): the routes start
them and read their results.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from activities.types import CreditPurchase
from api import billing, wallet
from api.deps import (BillingManagerDep, CatalogDep, EngineDep, LedgerDep, NowDep, PaymentsDep,
                      ReaderDep, SettingsDep, TemporalDep)
from api.params import CustomerId
from api.problems import ApiProblem, invalid, problem_responses
from api.schemas.credits import CreditBalances, CreditEntryResource, TopupBody, UsageBody
from api.scope import visible_customer
from domain import purchases
from ledger.errors import InsufficientCredits
from ledger.results import EntryResult

router = APIRouter(prefix="/v1/customers/{customer_id}/credits", tags=["credits"])


def _entry(ledger, result: EntryResult, now, payment_intent: str | None = None
           ) -> CreditEntryResource:
    balances = ledger.balances(result.customer_id, now)
    return CreditEntryResource(
        id=result.entry_id, customer=result.customer_id, type=result.entry_type,
        amount=result.amount, applied=result.applied, occurred_at=result.occurred_at,
        balance=CreditBalances.from_balances(balances, ledger.policy),
        payment_intent=payment_intent)


@router.get("", response_model=CreditBalances,
            responses=problem_responses(401, 404, 422), summary="Credit balances")
async def get_credits(customer_id: CustomerId, principal: ReaderDep, engine: EngineDep,
                      ledger: LedgerDep, catalog: CatalogDep, now: NowDep) -> CreditBalances:
    """Usable credits by kind, locked purchased credits and outstanding usage. On the free
    plan, today's free allowance (D18) is included."""
    customer = await visible_customer(engine, principal, customer_id)

    def read():
        wallet.grant_free_daily_if_due(
            ledger, wallet.read_standing(engine, catalog, customer.id), customer.id, now)
        return ledger.balances(customer.id, now)

    balances = await run_in_threadpool(read)
    return CreditBalances.from_balances(balances, ledger.policy)


@router.post("/usage", response_model=CreditEntryResource,
             responses=problem_responses(401, 404, 409, 422),
             summary="Spend credits on new work")
async def use_credits(customer_id: CustomerId, body: UsageBody, principal: ReaderDep,
                      engine: EngineDep, ledger: LedgerDep, payments: PaymentsDep,
                      catalog: CatalogDep, temporal: TemporalDep, settings: SettingsDep,
                      now: NowDep) -> CreditEntryResource:
    """All or nothing: 409 with the available amount when the credits do not cover it.
    Retrying with the same `idempotency_key` returns the first result. On the free plan
    today's free allowance (D18) is available; during one, a debit that leaves the balance
    under the auto-recharge threshold buys the configured amount (D19): the purchase runs in
    the background and its credits appear in the balance once paid."""
    customer = await visible_customer(engine, principal, customer_id)
    key = f"{customer.id}:usage:{body.idempotency_key}"

    def debit() -> tuple[CreditEntryResource, CreditPurchase | None]:
        standing = wallet.read_standing(engine, catalog, customer.id)
        wallet.grant_free_daily_if_due(ledger, standing, customer.id, now)
        result = ledger.debit(customer.id, body.amount, key, body.incurred_at or now)
        recharge = wallet.recharge_due(result, ledger, payments, standing, now)
        return _entry(ledger, result, now), recharge

    try:
        entry, recharge = await run_in_threadpool(debit)
    except InsufficientCredits as err:
        raise ApiProblem(409, "insufficient-credits",
                         f"{err.requested} credits requested, {err.available} available",
                         code=err.code, requested=err.requested,
                         available=err.available) from None
    if recharge is not None:
        await billing.start_auto_recharge(temporal, recharge, settings.temporal.task_queue)
    return entry


@router.post("/topups", response_model=CreditEntryResource,
             responses=problem_responses(401, 402, 404, 422, 500, 502, 503),
             summary="Buy credits")
async def topup_credits(customer_id: CustomerId, body: TopupBody,
                        principal: BillingManagerDep,
                        engine: EngineDep, ledger: LedgerDep, temporal: TemporalDep,
                        settings: SettingsDep, now: NowDep) -> CreditEntryResource:
    """Charges the customer's default payment method, then adds purchased credits (D16).
    Idempotent by `idempotency_key`: a retry neither charges nor credits twice. The purchase
    runs as a workflow that finishes even if this request is cut off; when it takes longer
    than the API waits, the answer is 503 with `Retry-After`, and a retry with the same key
    answers with its outcome."""
    customer = await visible_customer(engine, principal, customer_id)
    if body.expires_at is not None and body.expires_at <= now:  # checked before charging
        raise invalid("expires_at", "invalid_expiry", "expires_at must be in the future")
    purchase = CreditPurchase(
        idempotency_key=purchases.topup_key(customer.id, body.idempotency_key),
        customer_id=customer.id, purpose="topup", credits=body.amount,
        amount=purchases.price(body.amount), currency=purchases.CURRENCY, at=now,
        expires_at=body.expires_at)
    result = await billing.buy_credits(temporal, purchase, settings.temporal.task_queue,
                                       settings.credits.topup_wait_seconds)
    return await run_in_threadpool(_entry, ledger, result.entry, now, result.payment_intent_id)
