"""Public ids in Stripe's style (``cus_``, ``sub_``, ``org_``...): a type prefix people can read
in logs, and enough randomness (about 95 bits) that ids never collide or can be guessed."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 16) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"
