"""D9: a new default payment method retries the failed payment of every subscription in dunning.

One code path for every way a payment method changes (``POST /v1/customers/{id}/payment_method``
and Stripe's ``customer.updated`` / ``payment_method.attached`` webhooks), so both retry the
same subscriptions the same way. A webhook passes an ``update_id`` derived from the Stripe
event, so re-doing the retry for the same event (a takeover after a crash) is answered by
Temporal with the first outcome instead of retrying the payment twice.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from accounts.models import Customer
from domain.errors import RequestRefused
from domain.model import Actor, Status
from domain.requests import PaymentMethodUpdated
from eventlog import store as eventlog
from workflows import client_ops

IN_DUNNING = (Status.PAST_DUE, Status.INCOMPLETE, Status.UNPAID)


async def retry_dunning(client: Client, engine: Engine, customer: Customer,
                        payment_method: str | None, actor: Actor,
                        update_id: str | None = None, *,
                        timeout: timedelta | None = None) -> list[str]:
    """Tell each of the customer's subscriptions in dunning; the ids that accepted the retry.
    ``update_id`` (one per workflow) makes a repeated call with the same id act once;
    ``timeout`` bounds each update (the API's deadline); Temporal down propagates (a 503)."""
    retried = []
    for status in IN_DUNNING:
        views = await run_in_threadpool(eventlog.list_views, engine, customer.organization_id,
                                        customer_id=customer.id, status=status.value)
        for view in views:
            request = PaymentMethodUpdated(payment_method_id=payment_method, requested_by=actor)
            try:
                await client_ops.send(client, view.id, request, update_id, timeout=timeout)
            except RequestRefused:
                continue  # it left dunning in the meantime (paid, or ended): nothing to retry
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # listed, but its workflow is gone: nothing to retry
            retried.append(view.id)
    return sorted(retried)
