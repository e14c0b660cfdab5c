"""Who may call what: the routes x roles table, read back from the app's own routes.

Every route that takes an API key declares its roles with ``api.deps.requires`` (one
dependency); the few that take none are listed in ``WITHOUT_API_KEY`` with what protects them.
``table(app)`` renders the Markdown table kept in docs/api.md (tests/api/test_access.py
compares the two and walks every route with every role); ``python -m api.access`` prints it.
A route with neither an access rule nor an entry here stops the app from starting.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter, iter_route_contexts

from accounts.models import Role
from api.deps import Requires
from api.problems import Problem, problem_responses

COLUMNS = (Role.OWNER, Role.BILLING_ADMIN, Role.MEMBER, Role.OPERATOR)

# Routes that take no API key, and what protects them instead.
WITHOUT_API_KEY = {
    ("POST", "/webhooks/stripe"): "Stripe-Signature (the endpoint's signing secret)",
    ("GET", "/problems/{slug}"): "public: documentation of problem types",
    ("GET", "/portal/enter"): "the portal link's single-use token (docs/portal.md)",
    ("GET", "/portal/portal.css"): "public: the portal's stylesheet",
    ("GET", "/metrics"): "`SUBS_METRICS_TOKEN` when set (README \"Deployment security\")",
}
# Surfaces outside the API (not in the OpenAPI document), by path prefix.
WITHOUT_API_KEY_UNDER = {
    "/portal": "the portal session cookie of one customer (docs/portal.md)",
    "/codec": "`SUBS_CODEC__ENDPOINT_TOKEN` (README \"Deployment security\")",
    "/docs": "public: the API's documentation (served offline)",
    "/redoc": "public: the API's documentation (served offline)",
}


def _without(method: str, path: str) -> str | None:
    if (method, path) in WITHOUT_API_KEY:
        return WITHOUT_API_KEY[(method, path)]
    return next((why for prefix, why in WITHOUT_API_KEY_UNDER.items()
                 if path == prefix or path.startswith(prefix + "/")), None)


@dataclass(frozen=True)
class RouteAccess:
    method: str
    path: str
    roles: frozenset[Role] | None  # None: no API key (``without``: what protects it)
    without: str | None = None


def _rule(dependant: Dependant) -> Requires | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Requires):
            return dep.call
        found = _rule(dep)
        if found is not None:
            return found
    return None


def routes(app: FastAPI) -> list[RouteAccess]:
    """Every (method, path) of the app with its access rule, in path order."""
    found = []
    for route in iter_route_contexts(app.routes):  # routers included in the app, flattened
        if not isinstance(route.original_route, APIRoute):
            continue
        rule = _rule(route.dependant)
        for method in sorted(route.methods):
            without = _without(method, route.path)
            if rule is None and without is None:
                raise RuntimeError(f"{method} {route.path} declares no access rule: give it "
                                   "a requires(...) principal or list it in WITHOUT_API_KEY")
            found.append(RouteAccess(method, route.path, rule.roles if rule else None,
                                     without))
    return sorted(found, key=lambda r: (r.path, r.method))


def document(router: APIRouter) -> None:
    """Put the answers every keyed route can give (401, 403 when some role is refused, 413,
    429) in its OpenAPI responses, from the same rule (before the router is included)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        rule = _rule(route.dependant)
        statuses = [413]
        if rule is not None:
            statuses += [401, 429] + ([403] if set(COLUMNS) - rule.roles else [])
        # The problem schema of the route's other problem answers serves the added ones.
        schema = next((route.response_fields[s] for s, r in route.responses.items()
                       if r.get("model") is Problem and s in route.response_fields), None)
        for status, response in problem_responses(*statuses).items():
            if status not in route.responses:
                route.responses[status] = response
                if schema is not None:
                    route.response_fields[status] = schema


def table(app: FastAPI) -> str:
    head = ["Method", "Path", *(f"`{role.value}`" for role in COLUMNS), "Authenticated by"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in routes(app):
        if r.roles is None:
            cells = ["-"] * len(COLUMNS) + [r.without or ""]
        else:
            cells = ["yes" if role in r.roles else "403" for role in COLUMNS] + ["API key"]
        lines.append(f"| {r.method} | `{r.path}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from api.app import create_app

    print(table(create_app()), end="")
