"""PaymentService: the payments component's one entry point (activities, HTTP API).

Every operation that moves money is exactly once per idempotency key, with Stripe state
reconciled on retry; see payments.charging (charges, closing open charges), payments.refunds,
payments.pending (D6/D7 pending charges) and payments.customers. Those modules hold the
methods; this class only wires the shared state (engine, gateway, refund lease, clock), so
each concern stays small enough to read in one go.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from payments.charging import Charging
from payments.customers import Customers
from payments.gateway import StripeGateway
from payments.pending import PendingCharges
from payments.refunds import Refunds
from store.types import utcnow


class PaymentService(Charging, Refunds, PendingCharges, Customers):
    def __init__(self, engine: Engine, gateway: StripeGateway, *,
                 refund_lease: timedelta | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.gateway = gateway
        timeout = gateway.settings.request_timeout_seconds
        # Longer than any in-flight refund request could take (timeout + rate-limit wait).
        self.refund_lease = (refund_lease if refund_lease is not None
                             else timedelta(seconds=max(60.0, 3 * timeout)))
        self.clock = clock
        self._cards = {}  # payment method id -> its card (payments.customers.card_on_file)
        self._failed_cards = {}
