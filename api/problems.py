"""Every 4xx/5xx answer is an RFC 9457 problem (``application/problem+json``).

A small closed set of problem ``type``s (dereferenceable under ``/problems/<slug>``) says what
kind of failure it is; the ``code`` extension names the exact rule (the core's refusal codes
travel unchanged), ``errors`` lists the offending fields of a 422, so a client can act on the
answer without parsing prose. Bad input never reaches a 500: validation, refusals and unknown
routes each have their handler here.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import PaymentDeclined, RequestInvalid, RequestRefused

log = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"

# slug -> (title, what it means); the type URI is /problems/<slug>.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "validation-error": (
        "Your request is not valid",
        "One or more fields break a rule; `errors` lists each field, the rule and why. "
        "Nothing was changed."),
    "request-refused": (
        "The request is not allowed in the current state",
        "The request is well-formed but the subscription's rules do not allow it now; `code` "
        "names the rule and `detail` says what to do instead. Nothing was changed."),
    "insufficient-credits": (
        "Not enough credits",
        "The customer's usable credits do not cover the amount; `available` says how many "
        "there are. Nothing was debited."),
    "outstanding-obligations": (
        "Something is still outstanding",
        "The organization cannot be deleted while it has a live subscription, unsettled "
        "usage or scheduled work (D22); `outstanding` lists what remains."),
    "payment-failed": (
        "The payment did not go through",
        "The card was declined or the payment provider refused it; `decline_code` says why "
        "when the provider gave a reason."),
    "invalid-signature": (
        "The webhook signature is not valid",
        "The `Stripe-Signature` header is missing, does not sign the payload with the "
        "endpoint's secret, or is older than the tolerance; `code` says which. Nothing was "
        "done."),
    "unauthenticated": (
        "Authentication required",
        "Send `Authorization: Bearer <api key>` with a live key."),
    "forbidden": (
        "Your role does not allow this",
        "The key is valid but its role may not do this; `detail` says who can."),
    "not-found": (
        "No such resource",
        "Nothing with this id exists for your organization."),
    "method-not-allowed": ("Method not allowed", "This path does not accept this method."),
    "in-progress": (
        "The same request is being processed",
        "Another delivery of this request is being handled right now; retry after the "
        "`Retry-After` seconds. Nothing was done by this one."),
    "upstream-unavailable": (
        "A service we depend on is unavailable",
        "The workflow engine, the database or the payment provider did not answer (503), or "
        "not in time (504); retry after `Retry-After` seconds with the same Idempotency-Key."),
    "payload-too-large": (
        "The request body is too large",
        "The body is larger than the route accepts (`limit` bytes); it was not read in full. "
        "Nothing was done."),
    "rate-limited": (
        "Too many requests",
        "This API key sent more requests than its rate allows; retry after `Retry-After` "
        "seconds. Nothing was done."),
    "internal-error": (
        "Internal error",
        "Something failed on our side; it has been logged."),
}


class FieldError(BaseModel):
    field: str = Field(examples=["cancel_at"])
    rule: str = Field(examples=["cancel_at_not_in_future"])
    message: str = Field(examples=["cancel_at must be in the future"])


class Problem(BaseModel):
    """RFC 9457 problem details, with ``code`` and ``errors`` extensions."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "/problems/request-refused",
        "title": "The request is not allowed in the current state",
        "status": 409,
        "detail": "ended subscriptions cannot be reactivated; create a new subscription",
        "code": "subscription_ended",
    }]})

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str | None = None
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raise anywhere in a request to answer with a problem."""

    def __init__(self, status: int, slug: str, detail: str, *, code: str | None = None,
                 errors: list[FieldError] | None = None, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(detail)
        assert slug in PROBLEM_TYPES, slug
        self.status, self.slug, self.detail, self.code = status, slug, detail, code
        self.errors, self.headers, self.extensions = errors, headers, extensions


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route, so the OpenAPI document shows its problem answers."""
    return {status: {"model": Problem, "description": HTTPStatus(status).phrase,
                     "content": {PROBLEM_JSON: {}}} for status in statuses}


def not_found(kind: str, id_: str) -> ApiProblem:
    """Unknown and not-yours look the same, so ids of other organizations leak nothing."""
    return ApiProblem(404, "not-found", f"no such {kind}: {id_}",
                      code=f"{kind.replace(' ', '_')}_not_found")


def invalid(field: str, rule: str, message: str) -> ApiProblem:
    return ApiProblem(422, "validation-error", message, code=rule,
                      errors=[FieldError(field=field, rule=rule, message=message)])


def problem_response(request: Request, problem: ApiProblem) -> JSONResponse:
    body = Problem(type=f"/problems/{problem.slug}", title=PROBLEM_TYPES[problem.slug][0],
                   status=problem.status, detail=problem.detail, instance=request.url.path,
                   code=problem.code, errors=problem.errors, **problem.extensions)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True),
                        status_code=problem.status, headers=problem.headers,
                        media_type=PROBLEM_JSON)


def from_refusal(refused: RequestRefused) -> ApiProblem:
    """The core's refusal, unchanged: 409 for "not now", 422 for "never with these values",
    402 when the charge the request needed was declined (nothing changed)."""
    if isinstance(refused, PaymentDeclined):
        return ApiProblem(402, "payment-failed", refused.message, code=refused.code,
                          field=refused.field, decline_code=refused.decline_code)
    if isinstance(refused, RequestInvalid):
        field = refused.field or "body"
        return ApiProblem(422, "validation-error", refused.message, code=refused.code,
                          errors=[FieldError(field=field, rule=refused.code,
                                             message=refused.message)])
    extra = {"field": refused.field} if refused.field else {}
    return ApiProblem(409, "request-refused", refused.message, code=refused.code, **extra)


def _field_name(loc: tuple[Any, ...]) -> str:
    """("body", "cancel_at") -> "cancel_at"; ("body", "items", 0, "x") -> "items[0].x"."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or (str(loc[0]) if loc else "body")


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        rule = err.get("type", "invalid")
        if rule == "json_invalid":
            errors.append(FieldError(field="body", rule=rule,
                                     message="the body is not valid JSON"))
            continue
        errors.append(FieldError(field=_field_name(tuple(err.get("loc", ()))), rule=rule,
                                 message=message))
    return errors


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a problem."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestRefused)
    async def _refused(request: Request, exc: RequestRefused) -> JSONResponse:
        return problem_response(request, from_refusal(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(request, ApiProblem(422, "validation-error", detail,
                                                    code="invalid_request", errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = getattr(exc, "problem", None)  # ours, raised where only HTTPException passes
        if isinstance(problem, ApiProblem):
            return problem_response(request, problem)
        if exc.status_code == 400:  # FastAPI could not even decode the body (e.g. not UTF-8)
            message = "the body is not valid JSON"
            return problem_response(request, ApiProblem(
                422, "validation-error", message, code="invalid_request",
                errors=[FieldError(field="body", rule="json_invalid", message=message)]))
        slug = {401: "unauthenticated", 403: "forbidden", 404: "not-found",
                405: "method-not-allowed"}.get(exc.status_code)
        if slug is None:
            slug = "internal-error" if exc.status_code >= 500 else "validation-error"
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(request, ApiProblem(exc.status_code, slug, detail,
                                                    headers=getattr(exc, "headers", None)))

    app.add_exception_handler(Exception, crash)


async def crash(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback, answered with nothing of its text."""
    log.error("unhandled error on %s %s", request.method, request.url.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return problem_response(request, ApiProblem(500, "internal-error",
                                                "an internal error occurred"))
