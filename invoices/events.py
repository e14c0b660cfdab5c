"""What the lifecycle's own events do to a subscription's open invoices, written in the
transaction that records the event (activities.events):

- the subscription ended after its payment failed for good (dunning exhausted or the wait for
  a new payment method ran out, D9): its open invoice becomes ``uncollectible``;
- it became ``unpaid`` (final action ``unpaid``): the same; a later payment still pays it;
- it ended for any other reason (an immediate cancellation, D6; a scheduled end): open
  invoices are ``void``, nothing more is collected for them.

The payment side has already closed the charges by then (close_open_charges runs before the
event is recorded), so an intent found paid while closing has made its invoice ``paid``.
"""

from __future__ import annotations

from sqlmodel import Session

from domain.model import Event
from invoices import store

DELETED = "customer.subscription.deleted"
UPDATED = "customer.subscription.updated"
PAYMENT_FAILED = "payment_failed"


def apply(session: Session, event: Event) -> None:
    data = event.data
    if event.type == DELETED:
        reason = (data.get("cancellation_details") or {}).get("reason")
        store.close_open(session, data["id"],
                         "uncollectible" if reason == PAYMENT_FAILED else "void")
    elif (event.type == UPDATED and data.get("status") == "unpaid"
          and "status" in event.previous_attributes):
        store.close_open(session, data["id"], "uncollectible")
