"""Buying credits with money: a top-up the caller asks for (D16) or an auto-recharge after a
debit crosses the threshold (D19).

A purchase is one charge and one ledger grant under the *same* idempotency key, derived from
business facts: the caller's key for a top-up, the debit that crossed the threshold for an
auto-recharge. Everything needed to grant the credits is recoverable from the charge record
alone (credits from the amount, the expiry from the period key), so the reconciliation job can
finish a purchase whose workflow never got to its ledger write, and grant exactly what the
workflow would have granted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

Purpose = Literal["topup", "auto_recharge"]
PURPOSES: tuple[Purpose, ...] = ("topup", "auto_recharge")

# What a purchased credit costs. There is no setting for it yet: one credit is one minor unit
# of the default currency.
UNIT_PRICE = 1
CURRENCY = "usd"
_UNTIL = ":until:"


def topup_key(customer_id: str, caller_key: str) -> str:
    """Caller keys are namespaced per customer: one organization's key can neither collide
    with nor reveal another's entries."""
    return f"{customer_id}:topup:{caller_key}"


def auto_recharge_key(customer_id: str, debit_entry_id: int) -> str:
    """The debit that crossed the threshold: a retried debit never recharges twice."""
    return f"{customer_id}:auto_recharge:{debit_entry_id}"


def price(credits: int) -> int:
    """Minor units charged for ``credits``."""
    return credits * UNIT_PRICE


def credits_bought(amount: int) -> int:
    """The credits a charge of ``amount`` minor units paid for."""
    return amount // UNIT_PRICE


def period_key(purpose: Purpose, expires_at: datetime | None) -> str:
    """The charge record's period key: the purpose, and the credits' expiry if they have one
    (so a repair grants the same lot the purchase would have)."""
    return purpose if expires_at is None else f"{purpose}{_UNTIL}{expires_at.isoformat()}"


def expiry(period_key_: str) -> datetime | None:
    """The expiry stored by ``period_key`` (None: never, or a record without one)."""
    _, sep, until = period_key_.partition(_UNTIL)
    return datetime.fromisoformat(until) if sep else None
