"""What the ledger answers: plain pydantic values (never ORM rows), so activities can return
them through Temporal and a replayed call can return exactly what the first call returned."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from domain.credits import CreditKind

EntryType = Literal["grant", "forfeit", "debit", "usage", "settle", "lock", "unlock"]


class LotUse(BaseModel):
    lot_id: int
    kind: CreditKind
    amount: int


class EntryResult(BaseModel):
    """One recorded operation. ``amount`` is what was granted or asked for (forfeit/settle:
    what was moved); ``applied`` is what actually moved; ``outstanding`` is the part of a
    metered usage that could not be paid when it was recorded."""

    entry_id: int
    idempotency_key: str
    customer_id: str
    entry_type: EntryType
    credit_kind: CreditKind | None = None
    amount: int
    applied: int
    outstanding: int = 0
    occurred_at: datetime
    uses: list[LotUse] = []


class Balances(BaseModel):
    """A customer's credits at ``at``. ``spendable`` is what new work may use now
    (subscription + free_daily + purchased); locked purchased credits (D16) only settle usage
    incurred before the lock (D17); ``outstanding`` is unpaid usage (D22)."""

    customer_id: str
    at: datetime
    subscription: int
    free_daily: int
    purchased: int
    locked_purchased: int
    outstanding: int
    spendable: int
