"""How long a workflow lets a Stripe-calling activity run: shared by every workflow that
schedules one (subscriptions, credit purchases), so a dead worker is noticed the same way.

Pure constants: safe to import inside workflow code."""

from __future__ import annotations

from datetime import timedelta

# The activities that call Stripe heartbeat every second while they run (activities.heartbeat).
STRIPE_ACTIVITIES = frozenset({"charge", "refund", "collect_pending_charges",
                               "discard_pending_charges", "close_open_charges"})
# A worker that dies mid-call stops heartbeating: its attempt is retried elsewhere this long
# after its last heartbeat, not after start-to-close. The SDK sends one heartbeat per 0.8 x this
# (8 s), leaving 2 s for the network and a busy worker.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Bounds a call stuck in a live worker: a Stripe activity makes up to three requests (a retry
# retrieves the intent before confirming it), each bounded by Stripe's request timeout
# (settings.stripe.request_timeout_seconds, 20 s), plus up to 30 s queued at the rate limiter.
STRIPE_ACTIVITY_TIMEOUT = timedelta(seconds=3 * 20 + 30)
