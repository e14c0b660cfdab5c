"""An invoice's PDF with the names it shows (the API's /pdf route and the receipt email)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from accounts.models import Customer, Organization
from invoices import pdf
from invoices.store import get_invoice
from store.engine import session_scope


def invoice_pdf(engine: Engine, invoice_id: str) -> tuple[str, bytes] | None:
    """(file name, PDF bytes), or None for an unknown invoice."""
    invoice = get_invoice(engine, invoice_id)
    if invoice is None:
        return None
    with session_scope(engine) as session:
        customer = session.get(Customer, invoice.customer_id)
        organization = session.get(Organization, invoice.organization_id)
        names = {"customer_name": customer.name if customer else None,
                 "organization_name": organization.name if organization else None}
    return f"{invoice.display_number}.pdf", pdf.render(invoice, **names)
