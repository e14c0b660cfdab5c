"""Invoices: one numbered record per business charge (invoices.numbering, invoices.kinds)."""
