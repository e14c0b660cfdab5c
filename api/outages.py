"""A dependency that is down or slow is a 503/504 problem with ``Retry-After``, at once.

Temporal unavailable (server down, overloaded) or the database unreachable answers 503; a
Temporal operation past the API's deadline (``temporal.api_timeout_seconds``: no worker
polling, a stuck workflow) answers 504. The detail is generic: the dependency's own error
text names hosts and internals, so it goes to the log line for operators, not to callers.
Errors that mean our request was wrong (a Temporal INVALID_ARGUMENT, a database integrity
error) are bugs: the 500 handler logs them with their traceback (api/problems.py).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.service import RPCError, RPCStatusCode

from api.problems import ApiProblem, crash, problem_response
from workflows.client_ops import DeadlineExceeded

log = logging.getLogger("api")

RETRY_AFTER_SECONDS = 5

# Statuses that say "not now" rather than "never like this" (FAILED_PRECONDITION: a workflow
# that cannot answer yet, e.g. its task is failing).
_TRANSIENT = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED,
              RPCStatusCode.ABORTED, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN,
              RPCStatusCode.FAILED_PRECONDITION}
_DEADLINE = {RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}


def _retry_later(status: int, code: str, detail: str, **extensions: str) -> ApiProblem:
    return ApiProblem(status, "upstream-unavailable", detail, code=code,
                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, **extensions)


def temporal_unavailable() -> ApiProblem:
    return _retry_later(503, "temporal_unavailable", "the workflow service is unavailable; "
                        "retry later")


def temporal_timeout(**extensions: str) -> ApiProblem:
    return _retry_later(504, "temporal_timeout", "the workflow service did not answer in "
                        "time; retry later with the same Idempotency-Key", **extensions)


def database_unavailable() -> ApiProblem:
    return _retry_later(503, "database_unavailable", "the database is unavailable; retry "
                        "later")


def is_database_outage(exc: Exception) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def install(app: FastAPI) -> None:
    def answer(request: Request, exc: Exception, problem: ApiProblem) -> JSONResponse:
        cause = getattr(exc, "orig", None) or exc  # the driver's error, without the SQL
        log.warning("%s on %s %s: %s: %s", problem.code, request.method, request.url.path,
                    type(cause).__name__, cause)
        return problem_response(request, problem)

    @app.exception_handler(DeadlineExceeded)
    async def _deadline(request: Request, exc: DeadlineExceeded) -> JSONResponse:
        return answer(request, exc, temporal_timeout())

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in _DEADLINE:
            return answer(request, exc, temporal_timeout())
        if exc.status in _TRANSIENT:
            return answer(request, exc, temporal_unavailable())
        return await crash(request, exc)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if is_database_outage(exc):
            return answer(request, exc, database_unavailable())
        return await crash(request, exc)

    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeout, _database)
