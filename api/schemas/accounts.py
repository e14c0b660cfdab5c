"""Customer and organization resources and request bodies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A card number (test cards in test mode) or a Stripe PaymentMethod id.
_CARD = re.compile(r"^\d{12,19}$")
_PM = re.compile(r"^pm_[A-Za-z0-9_]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise PydanticCustomError("invalid_email",
                                  "must be an email address like name@example.com")
    return value


class CreateCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"email": "ada@example.com", "name": "Ada Lovelace",
         "payment_method": "4242424242424242"},
        {"email": "ada@example.com", "name": "Ada Lovelace", "payment_method": "pm_card_visa"},
    ]})

    email: str = Field(max_length=320)
    name: str = Field(min_length=1, max_length=200)
    payment_method: str | None = Field(default=None, max_length=255, description=(
        "A test card number (e.g. 4242424242424242; test keys only, production refuses it) "
        "or a PaymentMethod id (pm_...): becomes the default payment method."))
    organization: str | None = Field(default=None, max_length=64,
                                     description="Operator keys only: the organization.")

    _check_email = field_validator("email")(_email)

    @field_validator("payment_method")
    @classmethod
    def _payment_method(cls, value: str | None) -> str | None:
        if value is not None and not (_CARD.match(value) or _PM.match(value)):
            raise PydanticCustomError("invalid_payment_method",
                                      "must be a card number (12-19 digits) or a "
                                      "PaymentMethod id starting with pm_")
        return value


class UpdatePaymentMethod(BaseModel):
    """Exactly one of ``card_number`` and ``payment_method_id``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"card_number": "4242424242424242"}, {"payment_method_id": "pm_card_visa"}]})

    card_number: str | None = Field(default=None, pattern=r"^\d{12,19}$",
                                    examples=["4242424242424242"],
                                    description="A test card: test keys only.")
    payment_method_id: str | None = Field(default=None, pattern=r"^pm_[A-Za-z0-9_]+$",
                                          max_length=255)


class CustomerResource(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "cus_8sKd92LmQpXz0aBc", "object": "customer", "email": "ada@example.com",
        "name": "Ada Lovelace", "organization": "org_Q1w2E3r4T5y6U7i8",
        "created": "2026-11-23T09:00:00+00:00", "default_payment_method": "pm_1Q2w3E4r"}]})

    id: str
    object: Literal["customer"] = "customer"
    email: str
    name: str
    organization: str
    created: datetime
    default_payment_method: str | None = None


class PaymentMethodResult(BaseModel):
    """The customer, and the subscriptions whose payment was retried at once (D9)."""

    customer: CustomerResource
    retried_subscriptions: list[str] = Field(examples=[["sub_4fT9kQ2mZx8LpR1a"]])


class OrganizationResource(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "org_Q1w2E3r4T5y6U7i8", "object": "organization", "name": "Acme",
        "created": "2026-11-23T09:00:00+00:00", "deleted": True}]})

    id: str
    object: Literal["organization"] = "organization"
    name: str
    created: datetime
    deleted: bool = False
