"""/portal: the customer portal's server-rendered pages (Jinja2, no JavaScript).

A visit starts at ``/portal/enter?token=...`` (the single-use link of ``POST
/v1/portal_sessions``), which swaps the link for a session cookie scoped to one customer
(HttpOnly, SameSite=Strict, path /portal). Every page then answers for that customer only: a
subscription of anyone else is a 404, like an unknown id. Forms carry the session's CSRF token.
Every change is a request sent through ``client_ops.send``, the update path the API uses, so
the workflow's own rules accept or refuse it and a refusal is shown in its own words.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from accounts import portal
from accounts.customers import get_customer
from accounts.models import PortalSession
from api import billing, wallet
from api.deps import (CatalogDep, DeadlineDep, EngineDep, LedgerDep, NowDep, PaymentsDep,
                      SettingsDep, TemporalDep)
from api.dunning import retry_dunning
from api.portal import present
from api.preview import build_preview
from api.problems import ApiProblem
from api.scope import live_state
from domain.errors import RequestRefused
from domain.model import Actor, SubscriptionState
from domain.requests import (AcceptRetentionOffer, Cancel, Pause, Reactivate, Request as
                             SubscriptionRequest, Resume)
from eventlog import store as eventlog
from invoices import store as invoices
from invoices.receipts import invoice_pdf
from workflows import client_ops
from workflows.client_ops import DeadlineExceeded

COOKIE = "subs_portal"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/portal", include_in_schema=False)

# No scripts, frames or third-party anything; no Referer, so the link's token never leaks.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class PortalError(Exception):
    """Ends a request with a plain page (expired session, not found, bad form token)."""

    def __init__(self, status: int, title: str, message: str,
                 return_url: str | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.return_url = (status, title, message,
                                                                  return_url)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(HEADERS)
    return response


def _back(return_url: str | None) -> dict[str, str | None]:
    host = urlsplit(return_url).hostname if return_url else None
    return {"return_url": return_url, "return_host": host}


def install(app: FastAPI) -> None:
    @app.exception_handler(PortalError)
    async def _portal_error(request: Request, exc: PortalError) -> Response:
        return _page(request, "message.html", exc.status, title=exc.title,
                     message=exc.message, **_back(exc.return_url))

    app.include_router(router)


@dataclass(frozen=True)
class Visit:
    """The customer this browser may see, from its session cookie."""

    session: PortalSession
    csrf: str

    @property
    def customer_id(self) -> str:
        return self.session.customer_id

    @property
    def actor(self) -> Actor:
        return Actor(kind="customer", id=self.session.customer_id)


async def _visit(request: Request, engine: EngineDep, now: NowDep) -> Visit:
    secret = request.cookies.get(COOKIE)
    row = await run_in_threadpool(portal.current, engine, secret, now) if secret else None
    if row is None:
        raise PortalError(401, "Your session has ended",
                          "For your security this page is only open for a while. Go back and "
                          "open the billing page again.")
    return Visit(row, portal.csrf_token(secret))


VisitDep = Annotated[Visit, Depends(_visit)]


async def _checked(request: Request, visit: Visit) -> dict[str, str]:
    """The submitted form, once its CSRF token matches the session's."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    secret = request.cookies.get(COOKIE, "")
    if not portal.csrf_valid(secret, form.get("csrf_token")):
        raise PortalError(403, "This form has expired",
                          "Reload the page and try again.", visit.session.return_url)
    return form


async def _own_state(client: TemporalDep, engine: EngineDep, deadline: DeadlineDep,
                     visit: Visit, subscription_id: str) -> SubscriptionState:
    """The live state of one of this customer's subscriptions; anything else is a 404."""
    view = await run_in_threadpool(eventlog.get_view, engine, subscription_id)
    state = None
    if view is not None and view.customer_id == visit.customer_id:
        state = await _live(client, subscription_id, deadline, visit)
    if state is None or state.customer_id != visit.customer_id:
        raise PortalError(404, "Not found", "There is no such subscription on your account.",
                          visit.session.return_url)
    return state


async def _live(client, subscription_id: str, deadline: timedelta,
                visit: Visit) -> SubscriptionState | None:
    try:
        return await live_state(client, subscription_id, deadline)
    except DeadlineExceeded as err:
        raise _unavailable(visit) from err


def _unavailable(visit: Visit) -> PortalError:
    return PortalError(503, "Please try again in a moment",
                       "We could not reach your subscription just now. Nothing was changed.",
                       visit.session.return_url)


def _base(visit: Visit, **context: Any) -> dict[str, Any]:
    return {"csrf_token": visit.csrf, **_back(visit.session.return_url), **context}


def _card(payments, customer_id: str) -> present.Card | None:
    """The card on file by brand and last four digits (cached per card by the payments
    service), or its id when Stripe does not say."""
    return present.card(payments.card_on_file(customer_id))


HOME_INVOICES = 5  # the newest on the home page; the rest on /portal/invoices
ALL_INVOICES = 100


def _invoices(engine, visit: Visit, limit: int) -> list[present.InvoiceRow]:
    found = invoices.list_invoices(engine, visit.session.organization_id,
                                   customer_id=visit.customer_id, limit=limit)
    return [present.invoice_row(i) for i in found]


@router.get("/portal.css")
async def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "portal.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})


@router.get("/enter")
async def enter(request: Request, engine: EngineDep, settings: SettingsDep, now: NowDep,
                token: str = "") -> Response:
    """Spend the link once and set the session cookie. The answer is a page that moves on to
    /portal itself: a redirect would still count as the other site's navigation, and the
    browser would not send a SameSite=Strict cookie with it."""
    ttl = timedelta(seconds=settings.portal.session_ttl_seconds)
    redeemed = await run_in_threadpool(portal.redeem, engine, token, now, ttl) if token else None
    if redeemed is None:
        known = await run_in_threadpool(portal.find_link, engine, token) if token else None
        raise PortalError(403, "This link can no longer be used",
                          "Billing links work once and only for a few minutes. Go back and "
                          "open the billing page again to get a new one.",
                          known.return_url if known else None)
    response = _page(request, "enter.html", title="Opening your billing page",
                     **_back(redeemed.session.return_url))
    response.set_cookie(COOKIE, redeemed.session_secret, max_age=int(ttl.total_seconds()),
                        path="/portal", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https"
                        or (settings.portal.public_url or "").startswith("https://"))
    return response


@router.get("")
async def home(request: Request, visit: VisitDep, engine: EngineDep, client: TemporalDep,
               deadline: DeadlineDep, payments: PaymentsDep, ledger: LedgerDep,
               catalog: CatalogDep, now: NowDep) -> Response:
    # The card may need one Stripe GET (the first view of that card): it runs meanwhile.
    card = asyncio.ensure_future(run_in_threadpool(_card, payments, visit.customer_id))
    customer = await run_in_threadpool(get_customer, engine, visit.customer_id)
    views = await run_in_threadpool(eventlog.customer_views, engine, visit.customer_id)
    summaries = []
    for view in sorted(views, key=lambda v: (v.status == "canceled", v.id)):
        state = await _live(client, view.id, deadline, visit)
        if state is not None and state.customer_id == visit.customer_id:
            summaries.append(present.summarize(state, now))

    def wallet_and_invoices():
        wallet.grant_free_daily_if_due(
            ledger, wallet.read_standing(engine, catalog, visit.customer_id),
            visit.customer_id, now)
        return (ledger.balances(visit.customer_id, now),
                _invoices(engine, visit, HOME_INVOICES + 1))

    balances, rows = await run_in_threadpool(wallet_and_invoices)
    return _page(request, "home.html", **_base(
        visit, title="Your subscriptions", customer=customer, subscriptions=summaries,
        card=await card, credits=present.credit_lines(balances, ledger.policy),
        invoices=rows[:HOME_INVOICES], more_invoices=len(rows) > HOME_INVOICES))


@router.get("/invoices")
async def invoices_page(request: Request, visit: VisitDep, engine: EngineDep) -> Response:
    rows = await run_in_threadpool(_invoices, engine, visit, ALL_INVOICES)
    return _page(request, "invoices.html", **_base(
        visit, title="Invoices and receipts", invoices=rows))


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_download(invoice_id: str, visit: VisitDep, engine: EngineDep) -> Response:
    """The PDF of one of this customer's invoices; anyone else's is a 404, like an unknown
    id."""
    found = await run_in_threadpool(invoices.get_invoice, engine, invoice_id[:64])
    if (found is None or found.customer_id != visit.customer_id
            or found.organization_id != visit.session.organization_id):
        raise PortalError(404, "Not found", "There is no such invoice on your account.",
                          visit.session.return_url)
    name, content = await run_in_threadpool(invoice_pdf, engine, found.id)
    return Response(content, media_type="application/pdf", headers={
        **HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/subscriptions/{subscription_id}")
async def subscription(request: Request, subscription_id: str, visit: VisitDep,
                       engine: EngineDep, client: TemporalDep, deadline: DeadlineDep,
                       payments: PaymentsDep, settings: SettingsDep, now: NowDep,
                       done: str | None = None) -> Response:
    state = await _own_state(client, engine, deadline, visit, subscription_id)
    return await _subscription_page(request, visit, state, payments, settings, now,
                                    notice=present.confirmation(done, state) if done else None)


async def _subscription_page(request: Request, visit: Visit, state: SubscriptionState,
                             payments, settings, now, *, notice: str | None = None,
                             error: str | None = None, status: int = 200) -> Response:
    card = await run_in_threadpool(_card, payments, state.customer_id)
    summary = present.summarize(state, now)
    return _page(request, "subscription.html", status, **_base(
        visit, title=summary.plan, sub=summary, card=card, notice=notice, error=error,
        allow_pause=settings.portal.allow_pause))


@router.get("/subscriptions/{subscription_id}/cancel")
async def cancel_page(request: Request, subscription_id: str, visit: VisitDep,
                      engine: EngineDep, client: TemporalDep, deadline: DeadlineDep,
                      payments: PaymentsDep, ledger: LedgerDep, now: NowDep) -> Response:
    state = await _own_state(client, engine, deadline, visit, subscription_id)
    return await _cancel_page(request, visit, state, ledger, payments, now)


async def _cancel_page(request: Request, visit: Visit, state: SubscriptionState, ledger,
                       payments, now, *, error: str | None = None, status: int = 200,
                       form: dict[str, str] | None = None) -> Response:
    preview = await run_in_threadpool(build_preview, state, now, ledger, payments)
    modes = []
    if preview.at_period_end.allowed:
        modes.append(("at_period_end", "At the end of the paid period",
                      f"Your access ends on {present.when(preview.at_period_end.ends_at)}. "
                      "You are not charged again."))
    if preview.immediately.allowed:
        modes.append(("immediately", "Right now",
                      "Your access ends at once. The rest of this period is not refunded."))
    refused = None if modes else (preview.at_period_end.refused_reason
                                  or preview.immediately.refused_reason)
    offer = preview.retention_offer
    summary = present.summarize(state, now)
    return _page(request, "cancel.html", status, **_base(
        visit, title=f"Cancel {summary.plan}", sub=summary, modes=modes, refused=refused,
        effects=present.cancel_effects(preview), reasons=present.REASONS,
        offer=None if offer is None else {
            "percent_off": offer.percent_off, "periods": offer.periods,
            "price": present.money(offer.price, preview.currency),
            "was": present.money(state.plan.amount, preview.currency)},
        error=error, form=form or {}))


async def _act(request: Request, visit: Visit, state: SubscriptionState,
               change: SubscriptionRequest, action: str, client, deadline, payments,
               settings, now) -> Response:
    """Send one request through the API's update path; a refusal is shown on the page."""
    try:
        await client_ops.send(client, state.id, change, timeout=deadline)
    except RequestRefused as refused:
        return await _subscription_page(request, visit, state, payments, settings, now,
                                        error=refused.message, status=refused.http_status)
    except DeadlineExceeded as err:
        raise _unavailable(visit) from err
    response = RedirectResponse(f"/portal/subscriptions/{state.id}?done={action}", 303)
    response.headers.update(HEADERS)
    return response


@router.post("/subscriptions/{subscription_id}/cancel")
async def cancel(request: Request, subscription_id: str, visit: VisitDep, engine: EngineDep,
                 client: TemporalDep, deadline: DeadlineDep, payments: PaymentsDep,
                 ledger: LedgerDep, settings: SettingsDep, now: NowDep) -> Response:
    form = await _checked(request, visit)
    state = await _own_state(client, engine, deadline, visit, subscription_id)
    reason, mode = form.get("reason"), form.get("mode", "at_period_end")
    comment = (form.get("comment") or "").strip()[:500] or None
    if reason not in present.REASONS or mode not in ("at_period_end", "immediately"):
        return await _cancel_page(request, visit, state, ledger, payments, now, status=422,
                                  error="Choose a reason and when it should end.", form=form)
    change = Cancel(mode=mode, feedback=reason, comment=comment, requested_by=visit.actor)
    return await _act(request, visit, state, change, "cancel", client, deadline, payments,
                      settings, now)


@router.post("/subscriptions/{subscription_id}/{action}")
async def simple_action(request: Request, subscription_id: str, action: str, visit: VisitDep,
                        engine: EngineDep, client: TemporalDep, deadline: DeadlineDep,
                        payments: PaymentsDep, settings: SettingsDep, now: NowDep) -> Response:
    """reactivate, offer (accept the retention offer), pause, resume."""
    changes = {"reactivate": Reactivate, "offer": AcceptRetentionOffer}
    if settings.portal.allow_pause:
        changes |= {"pause": lambda requested_by: Pause(mode="at_period_end",
                                                        requested_by=requested_by),
                    "resume": lambda requested_by: Resume(anchor="keep",
                                                          requested_by=requested_by)}
    if action not in changes:
        raise PortalError(404, "Not found", "There is no such page.", visit.session.return_url)
    await _checked(request, visit)
    state = await _own_state(client, engine, deadline, visit, subscription_id)
    return await _act(request, visit, state, changes[action](requested_by=visit.actor), action,
                      client, deadline, payments, settings, now)


def _test_mode(settings) -> bool:
    return settings.stripe.api_base is not None or settings.stripe.api_key.startswith("sk_test")


@router.get("/payment_method")
async def payment_method_page(request: Request, visit: VisitDep, payments: PaymentsDep,
                              settings: SettingsDep, done: str | None = None) -> Response:
    card = await run_in_threadpool(_card, payments, visit.customer_id)
    return _page(request, "payment_method.html", **_base(
        visit, title="Update your card", card=card, test_mode=_test_mode(settings),
        notice="Your card is saved. Future charges use it." if done else None))


@router.post("/payment_method")
async def payment_method(request: Request, visit: VisitDep, engine: EngineDep,
                         payments: PaymentsDep, client: TemporalDep, deadline: DeadlineDep,
                         settings: SettingsDep) -> Response:
    """The API's path: set the default payment method, then retry any failed payment."""
    form = await _checked(request, visit)
    value = "".join((form.get("payment_method") or "").split())
    customer = await run_in_threadpool(get_customer, engine, visit.customer_id)
    error = None
    if not value:
        error = "Enter a card number." if _test_mode(settings) else "Enter a payment method."
    else:
        try:
            pm = await run_in_threadpool(billing.set_default_payment_method, payments,
                                         customer.id, value, "payment_method")
            await retry_dunning(client, engine, customer, pm, visit.actor, timeout=deadline)
        except ApiProblem as problem:
            error = problem.detail
        except DeadlineExceeded as err:
            raise _unavailable(visit) from err
    if error is not None:
        card = await run_in_threadpool(_card, payments, customer.id)
        return _page(request, "payment_method.html", 422, **_base(
            visit, title="Update your card", card=card, test_mode=_test_mode(settings),
            error=error))
    response = RedirectResponse("/portal/payment_method?done=1", 303)
    response.headers.update(HEADERS)
    return response
