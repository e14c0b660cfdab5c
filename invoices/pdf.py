"""The invoice as a PDF receipt (fpdf2, pure Python): number, status, customer, each line with
its period and plan, the total, and how it was paid. Core fonts only (no font files), so the
text is Latin-1: anything else is replaced, never an error."""

from __future__ import annotations

from invoices.types import InvoiceRecord

# ISO 4217 currencies without minor units (Stripe's list): amounts are already whole units.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                          "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})


def money(amount: int, currency: str) -> str:
    """``1999, "usd"`` -> ``"19.99 USD"``."""
    code = currency.upper()
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount} {code}"
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    return f"{sign}{units}.{cents:02d} {code}"


def _text(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


def _period(line) -> str:
    if line.period_start is None:
        return ""
    end = f" - {line.period_end:%Y-%m-%d %H:%M:%S} UTC" if line.period_end else ""
    return f"{line.period_start:%Y-%m-%d %H:%M:%S} UTC{end}"


def render(invoice: InvoiceRecord, *, organization_name: str | None = None,
           customer_name: str | None = None) -> bytes:
    # Imported here, on the first receipt: fpdf2 (with fontTools) costs about 0.5 s of CPU
    # at import, which every worker, API and CLI process would otherwise pay at start.
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {invoice.display_number}")
    pdf.set_creator("subscription-engine")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    title = "Receipt" if invoice.status == "paid" else "Invoice"
    pdf.cell(0, 10, _text(f"{title} {invoice.display_number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    facts = [
        ("Status", invoice.status),
        ("Issued", f"{invoice.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("Organization", organization_name or invoice.organization_id),
        ("Customer", f"{customer_name} ({invoice.customer_id})" if customer_name
         else invoice.customer_id),
    ]
    if invoice.subscription_id:
        facts.append(("Subscription", invoice.subscription_id))
    if invoice.paid_at is not None:
        facts.append(("Paid", f"{invoice.paid_at:%Y-%m-%d %H:%M:%S} UTC"))
    if invoice.payment_intent_id:
        facts.append(("Payment", invoice.payment_intent_id))
    for label, value in facts:
        pdf.cell(35, 6, _text(label))
        pdf.cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table(col_widths=(70, 60, 20, 30), text_align=("LEFT", "LEFT", "LEFT", "RIGHT"),
                   line_height=6) as table:
        table.row(["Description", "Period", "Plan", "Amount"])
        for line in invoice.lines:
            table.row([_text(line.description), _period(line), _text(line.plan or ""),
                       money(line.amount, invoice.currency)])
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, f"Total {money(invoice.total, invoice.currency)}", new_x="LMARGIN",
             new_y="NEXT", align="R")
    pdf.cell(0, 7, f"Amount paid {money(invoice.amount_paid, invoice.currency)}",
             new_x="LMARGIN", new_y="NEXT", align="R")
    return bytes(pdf.output())
