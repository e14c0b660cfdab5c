"""Payments: Stripe charges, refunds and pending charges, exactly once per idempotency key.

service (PaymentService, the entry point) = charging + refunds + pending + customers;
gateway (StripeGateway, the only Stripe caller), shared_rate_limit (the deployment's Stripe
budget, in the database) and rate_limit (a process's token bucket),
errors (retryable or not), models/store (tables and compare-and-set updates), records (views).
"""
