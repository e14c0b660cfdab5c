"""Ledger refusals. They reuse the core's RequestRefused so the API maps them like any other
rule (code + message); nothing was written when one is raised."""

from __future__ import annotations

from domain.errors import RequestInvalid, RequestRefused


class InsufficientCredits(RequestRefused):
    """A strict debit asked for more than the customer may spend on it; nothing was debited."""

    def __init__(self, customer_id: str, requested: int, available: int) -> None:
        super().__init__(
            "insufficient_credits",
            f"customer {customer_id} asked for {requested} credits, {available} available",
            field="amount",
        )
        self.customer_id = customer_id
        self.requested = requested
        self.available = available


class IdempotencyConflict(RequestInvalid):
    """An idempotency key came back with different parameters: a caller bug, never a retry."""

    def __init__(self, key: str, recorded: str, requested: str) -> None:
        super().__init__(
            "idempotency_key_reused",
            f"idempotency key {key!r} was recorded for {recorded}, not {requested}",
            field="idempotency_key",
        )
        self.key = key
