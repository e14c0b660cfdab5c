"""Inbound Stripe webhooks: signature verification and the record of processed events."""
