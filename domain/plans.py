"""Plans are values: a subscription keeps a snapshot of its plan, so editing the catalog never
changes what a running subscription charges (a plan change is an explicit request)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.periods import Interval


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str
    amount: int = Field(ge=0, description="Price per period in minor units (cents).")
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[a-z]{3}$")
    interval: Interval
    interval_count: int = Field(default=1, ge=1, le=1000)
    included_credits: int = Field(default=0, ge=0)
    features: tuple[str, ...] = ()

    @property
    def is_free(self) -> bool:
        return self.amount == 0
