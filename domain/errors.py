"""Refusals of the core. Each names the rule, so the API can answer 409/422 with the reason."""

from __future__ import annotations


class RequestRefused(Exception):
    """A request that is well-formed but not allowed now (HTTP 409). Nothing changed."""

    http_status = 409

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class RequestInvalid(RequestRefused):
    """A request whose values break a rule regardless of state (HTTP 422)."""

    http_status = 422


class PaymentDeclined(RequestRefused):
    """The charge a request needed was declined (HTTP 402): the request did not happen."""

    http_status = 402

    def __init__(self, code: str, message: str, field: str | None = None,
                 decline_code: str | None = None) -> None:
        super().__init__(code, message, field)
        self.decline_code = decline_code
