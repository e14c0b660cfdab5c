"""Which invoice a charge belongs to, and what a decline does to it: one entry per charge
purpose, so a new kind of charge (e.g. a proration) is one line in ``KINDS``.

A charge of a subscription period is retried under a new idempotency key per attempt
(``{subscription}:{period}:{attempt}``, dunning), but it is one business charge: its invoice
is keyed by (subscription, period), so every retry pays the same invoice. Any other charge is
its own business charge: its invoice is keyed by the charge's idempotency key.

A new purpose (e.g. ``"proration": Kind("Proration", per_period=False, declined="open")``)
needs only its entry here; one without an entry still gets its own invoice (``DEFAULT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Kind:
    title: str
    per_period: bool  # retried by dunning under new keys: one invoice per subscription period
    # What a declined charge leaves: "open" (dunning retries it; the lifecycle's end decides),
    # "uncollectible" (never retried, the money is owed), "void" (nothing was bought).
    declined: Literal["open", "uncollectible", "void"]
    line: str = "charge"  # the kind of the one line a charge without its own lines gets


KINDS: dict[str, Kind] = {
    "first_period": Kind("Subscription", per_period=True, declined="open"),
    "renewal": Kind("Subscription renewal", per_period=True, declined="open"),
    "final_invoice": Kind("Final charge (pending items)", per_period=False,
                          declined="uncollectible"),
    "topup": Kind("Credit top-up", per_period=False, declined="void", line="credits"),
    "auto_recharge": Kind("Credit auto-recharge", per_period=False, declined="void",
                          line="credits"),
    # A declined upgrade leaves the plan as it was (rules v4): nothing was bought.
    "proration": Kind("Plan upgrade (prorated)", per_period=False, declined="void",
                      line="proration"),
}
DEFAULT = Kind("Charge", per_period=False, declined="open")


def kind_of(purpose: str) -> Kind:
    return KINDS.get(purpose, DEFAULT)


def period_invoice_key(subscription_id: str, period_key: str) -> str:
    return f"{subscription_id}:{period_key}:invoice"


def invoice_key(purpose: str, subscription_id: str, period_key: str,
                charge_key: str) -> str:
    """The business charge a charge attempt belongs to."""
    if kind_of(purpose).per_period:
        return period_invoice_key(subscription_id, period_key)
    return f"{charge_key}:invoice"
