"""Path and header parameters that several routes take, declared once so that the same id
or header has the same rule (and the same OpenAPI text) on every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path

CustomerId = Annotated[str, Path(max_length=64, examples=["cus_8sKd92LmQpXz0aBc"])]
SubscriptionId = Annotated[str, Path(max_length=64, examples=["sub_4fT9kQ2mZx8LpR1a"])]
EndpointId = Annotated[str, Path(max_length=64, examples=["we_Q1w2E3r4T5y6U7i8"])]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=200,
    description="Retrying with the same key answers with the first outcome; nothing happens "
    "twice.")]
