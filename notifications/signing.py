"""Outbound webhook signatures in Stripe's scheme, so receivers reuse what they know:
``Subscriptions-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
The timestamp inside the signed text lets receivers refuse replays older than a tolerance."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Subscriptions-Signature"
EVENT_ID_HEADER = "Subscriptions-Event-Id"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(value: str, body: bytes, secret: str, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: any v1 matches, and the timestamp is within the tolerance."""
    parts = [p.split("=", 1) for p in value.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)
