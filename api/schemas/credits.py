"""Credit balances and the bodies of usage and top-up requests (D15-D20)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ledger.results import Balances

# The ledger allows 200 characters per key; ours are namespaced with the customer and the
# operation ("<customer>:usage:<key>"), which takes up to 80 of them.
IdempotencyKeyField = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_\-:.]+$",
                            examples=["job-7f3a-run-2"])


class CreditBalances(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "object": "credit_balance", "customer": "cus_8sKd92LmQpXz0aBc",
        "at": "2026-11-30T08:12:00+00:00",
        "balances": {"subscription": 4200, "free_daily": 0, "purchased": 500},
        "locked": 0, "outstanding": 0, "available": 4700, "topup_policy": "lock"}]})

    object: Literal["credit_balance"] = "credit_balance"
    customer: str
    at: datetime
    balances: dict[str, int] = Field(description="Usable credits by kind.")
    locked: int = Field(description="Purchased credits locked after the paid term (D16); "
                        "they still settle earlier usage (D17).")
    outstanding: int = Field(description="Usage not yet paid for (D22 blocks deletion).")
    available: int = Field(description="What new work may spend now.")
    topup_policy: Literal["lock", "keep"]

    @classmethod
    def from_balances(cls, b: Balances, policy: str) -> CreditBalances:
        return cls(customer=b.customer_id, at=b.at,
                   balances={"subscription": b.subscription, "free_daily": b.free_daily,
                             "purchased": b.purchased},
                   locked=b.locked_purchased, outstanding=b.outstanding, available=b.spendable,
                   topup_policy=policy)


class UsageBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": 120, "idempotency_key": "job-7f3a-run-2"}]})

    amount: int = Field(gt=0, le=1_000_000_000)
    idempotency_key: str = IdempotencyKeyField
    incurred_at: AwareDatetime | None = Field(default=None, description="Default: now.")


class TopupBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": 1000, "idempotency_key": "topup-2026-11-30"}]})

    amount: int = Field(gt=0, le=10_000_000, description="Credits to buy.")
    idempotency_key: str = IdempotencyKeyField
    expires_at: AwareDatetime | None = Field(default=None, description=(
        "When the purchased credits expire (default: never)."))


class CreditEntryResource(BaseModel):
    """One recorded ledger operation; a retry with the same key returns the same entry."""

    object: Literal["credit_entry"] = "credit_entry"
    id: int
    customer: str
    type: str
    amount: int
    applied: int
    occurred_at: datetime
    balance: CreditBalances
    payment_intent: str | None = None
