"""The invoices service: invoices are written inside the payments service's transactions
(``open_for_charge`` with the charge attempt's INSERT, ``charge_settled`` with its outcome)
and the event log's (``invoices.events``), and read by the API, the CLI and the receipts.

Status moves: open -> paid (a charge succeeded; also from uncollectible or void, because the
money did move), open -> uncollectible (a final failure), open -> void (nothing is owed).
"""

from __future__ import annotations

import secrets

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.models import Customer
from invoices import numbering
from invoices.kinds import invoice_key, kind_of
from invoices.models import Invoice
from invoices.types import InvoiceLine, InvoiceRecord
from store.engine import session_scope
from store.types import utcnow


def organization_of(session: Session, customer_id: str) -> str:
    """The customer's organization; a customer known only to payments (no accounts row) is
    its own organization, as the lifecycle treats it (domain.lifecycle.create)."""
    customer = session.get(Customer, customer_id)
    return customer.organization_id if customer is not None else customer_id


def open_for_charge(session: Session, *, purpose: str, charge_key: str, subscription_id: str,
                    customer_id: str, period_key: str, amount: int, currency: str,
                    description: str, lines: list[InvoiceLine]) -> Invoice:
    """The invoice of this charge, created (and numbered) in the caller's transaction unless
    an earlier attempt of the same business charge created it."""
    key = invoice_key(purpose, subscription_id, period_key, charge_key)
    existing = find_by_key(session, key)
    if existing is not None:
        return existing
    organization = organization_of(session, customer_id)
    last = numbering.lock_counter(session, organization)
    existing = find_by_key(session, key)  # created by a transaction we waited for
    if existing is not None:
        return existing
    kind = kind_of(purpose)
    if not lines:
        lines = [InvoiceLine(kind=kind.line, description=description or kind.title,
                             amount=amount)]
    invoice = Invoice(
        id=f"in_{secrets.token_hex(10)}", key=key, organization_id=organization,
        number=numbering.take_next(session, organization, last), customer_id=customer_id,
        subscription_id=subscription_id, kind=purpose, period_key=period_key,
        currency=currency, total=amount, lines=[line.model_dump(mode="json") for line in lines])
    session.add(invoice)
    session.flush()
    return invoice


def charge_settled(session: Session, *, purpose: str, charge_key: str, subscription_id: str,
                   period_key: str, status: str, amount: int,
                   payment_intent_id: str | None) -> None:
    """A charge attempt got its outcome (in the transaction recording it)."""
    key = invoice_key(purpose, subscription_id, period_key, charge_key)
    now = utcnow()
    if status == "succeeded":
        session.exec(update(Invoice).where(Invoice.key == key, Invoice.status != "paid").values(
            status="paid", amount_paid=amount, payment_intent_id=payment_intent_id,
            charge_key=charge_key, paid_at=now))
        return
    final = kind_of(purpose).declined
    if final != "open":
        session.exec(update(Invoice).where(Invoice.key == key, Invoice.status == "open")
                     .values(status=final, closed_at=now))


def close_open(session: Session, subscription_id: str, status: str) -> int:
    """Every open invoice of the subscription becomes ``status`` (void or uncollectible)."""
    result = session.exec(update(Invoice).where(
        Invoice.subscription_id == subscription_id, Invoice.status == "open")
        .values(status=status, closed_at=utcnow()))
    return result.rowcount


def find_by_key(session: Session, key: str) -> Invoice | None:
    return session.exec(select(Invoice).where(Invoice.key == key)).first()




# Reads ---------------------------------------------------------------------------------------

def record(row: Invoice) -> InvoiceRecord:
    return InvoiceRecord.model_validate(
        {**row.model_dump(), "display_number": numbering.display(row.number)})


def get_invoice(engine: Engine, invoice_id: str) -> InvoiceRecord | None:
    with session_scope(engine) as session:
        row = session.get(Invoice, invoice_id)
        return record(row) if row is not None else None


def by_key(engine: Engine, key: str) -> InvoiceRecord | None:
    with session_scope(engine) as session:
        row = find_by_key(session, key)
        return record(row) if row is not None else None


def list_invoices(engine: Engine, organization_id: str | None, *, customer_id: str | None = None,
                  subscription_id: str | None = None, status: str | None = None,
                  limit: int = 100, starting_after: str | None = None) -> list[InvoiceRecord]:
    """Newest first: by number, which is the order invoices were created in within an
    organization (callers filter by organization or by a customer, who has one).
    ``starting_after`` is the last id of the previous page; ``organization_id`` None: every
    organization (the CLI, by customer)."""
    query = select(Invoice)
    for column, value in ((Invoice.organization_id, organization_id),
                          (Invoice.customer_id, customer_id),
                          (Invoice.subscription_id, subscription_id),
                          (Invoice.status, status)):
        if value is not None:
            query = query.where(column == value)
    with session_scope(engine) as session:
        if starting_after:
            after = session.get(Invoice, starting_after)
            if after is None:
                return []
            query = query.where((Invoice.number < after.number)
                                | ((Invoice.number == after.number) & (Invoice.id < after.id)))
        rows = session.exec(query.order_by(Invoice.number.desc(), Invoice.id.desc())
                            .limit(limit)).all()
        return [record(r) for r in rows]


def totals(engine: Engine, customer_id: str) -> dict[str, int]:
    """Amount paid per currency across the customer's invoices."""
    out: dict[str, int] = {}
    for inv in list_invoices(engine, None, customer_id=customer_id, limit=10_000):
        out[inv.currency] = out.get(inv.currency, 0) + inv.amount_paid
    return out
