"""The grant half of a credit purchase (the charge half is the ``charge`` activity).

Idempotent by the purchase's key, which is also the charge's: a retried or repeated grant
replays the recorded entry, and the reconciliation job grants under the same key, so whichever
comes first, the credits exist once. A key already used for something else, or a grant the
ledger refuses, will not change on retry: it fails non-retryably and the workflow reports it.
Database errors propagate, so Temporal retries them until the database is back.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import CreditPurchase
from domain.errors import RequestInvalid
from ledger.results import EntryResult
from ledger.service import Ledger


class PurchaseActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn(name="purchase_credits")
    def purchase_credits(self, purchase: CreditPurchase) -> EntryResult:
        """D16/D19: the purchased credits, once per purchase key."""
        try:
            result = self.ledger.purchase_topup(purchase.customer_id, purchase.credits,
                                                purchase.idempotency_key, purchase.at,
                                                purchase.expires_at)
        except RequestInvalid as err:  # also the ledger's IdempotencyConflict
            raise ApplicationError(str(err), type=type(err).__name__,
                                   non_retryable=True) from err
        activity.logger.info("purchased %s credits", purchase.credits, extra={
            "customer_id": purchase.customer_id, "purpose": purchase.purpose,
            "idempotency_key": purchase.idempotency_key, "entry_id": result.entry_id})
        return result
