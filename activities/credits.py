"""Activities that move credits at period boundaries (D15-D17). Each one is idempotent per
(subscription, period): the ledger's unique idempotency key turns a retried call into a replay
of the first result instead of a second grant or forfeit."""

from __future__ import annotations

from temporalio import activity

from activities.types import CreditGrant, CreditPeriodChange
from ledger.results import EntryResult
from ledger.service import Ledger


class CreditActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn(name="grant_period_credits")
    def grant_period_credits(self, grant: CreditGrant) -> EntryResult | None:
        """D15: a paid period's included credits. Plans without credits grant nothing."""
        if grant.amount <= 0:
            return None
        result = self.ledger.grant_subscription_credits(grant)
        activity.logger.info("granted %s period credits", grant.amount, extra={
            "subscription_id": grant.subscription_id, "period": grant.period_key,
            "customer_id": grant.customer_id, "idempotency_key": grant.idempotency_key})
        return result

    @activity.defn(name="forfeit_period_credits")
    def forfeit_period_credits(self, change: CreditPeriodChange) -> EntryResult:
        """D15: unused subscription credits of the period that just ended are removed."""
        result = self.ledger.forfeit_subscription_credits(change)
        activity.logger.info("forfeited unused period credits", extra={
            "subscription_id": change.subscription_id, "period": change.period_key,
            "customer_id": change.customer_id, "idempotency_key": change.idempotency_key})
        return result

    @activity.defn(name="lock_purchased_credits")
    def lock_purchased_credits(self, change: CreditPeriodChange) -> EntryResult:
        """D16: the paid term ended; purchased credits stop funding new work."""
        return self.ledger.lock_purchased(change)

    @activity.defn(name="unlock_purchased_credits")
    def unlock_purchased_credits(self, change: CreditPeriodChange) -> EntryResult:
        """D16: a resubscription makes purchased credits usable again."""
        return self.ledger.unlock_purchased(change)
