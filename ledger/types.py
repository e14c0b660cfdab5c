"""Inputs of the ledger's credit movements: plain pydantic models, owned by the ledger (the
activities above re-export them; see activities.types)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CreditGrant(BaseModel):
    idempotency_key: str
    customer_id: str
    subscription_id: str
    period_key: str
    amount: int
    period_start: datetime
    period_end: datetime


class CreditPeriodChange(BaseModel):
    """Forfeit a period's subscription credits (D15), or lock/unlock purchased credits (D16/D17)."""

    idempotency_key: str
    customer_id: str
    subscription_id: str
    period_key: str
    at: datetime
