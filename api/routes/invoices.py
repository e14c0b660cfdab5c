"""/v1/invoices: one invoice per charge (invoices/), newest first, and its PDF. Read routes:
every role of the organization may read them; another organization's invoice is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, ReaderDep
from api.problems import problem_responses
from api.schemas.invoices import InvoiceList, InvoiceResource, InvoiceStatus
from api.scope import organization_for, visible
from invoices import store as invoices
from invoices.receipts import invoice_pdf
from invoices.types import InvoiceRecord

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])

InvoiceId = Annotated[str, Path(max_length=64, examples=["in_3f9a0c1d2e4b5a6c7d8e"])]


async def _visible(engine, principal, invoice_id: str) -> InvoiceRecord:
    found = await run_in_threadpool(invoices.get_invoice, engine, invoice_id)
    return visible(principal, "invoice", invoice_id, found)


@router.get("", response_model=InvoiceList, responses=problem_responses(401, 404, 422),
            summary="List invoices")
async def list_invoices(
    principal: ReaderDep, engine: EngineDep,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    subscription: Annotated[str | None, Query(max_length=64)] = None,
    status: InvoiceStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(max_length=64, description=(
        "The last id of the previous page."))] = None,
    organization: Annotated[str | None, Query(max_length=64, description=(
        "Operator keys only: the organization to list."))] = None,
) -> InvoiceList:
    """The organization's invoices, newest first, filtered by customer, subscription and
    status."""
    org = await organization_for(engine, principal, organization)
    found = await run_in_threadpool(
        invoices.list_invoices, engine, org, customer_id=customer,
        subscription_id=subscription, status=status, limit=limit + 1,
        starting_after=starting_after)
    return InvoiceList(data=[InvoiceResource.from_record(r) for r in found[:limit]],
                       has_more=len(found) > limit)


@router.get("/{invoice_id}", response_model=InvoiceResource,
            responses=problem_responses(401, 404, 422), summary="Retrieve an invoice")
async def get_invoice(invoice_id: InvoiceId, principal: ReaderDep,
                      engine: EngineDep) -> InvoiceResource:
    return InvoiceResource.from_record(await _visible(engine, principal, invoice_id))


@router.get("/{invoice_id}/pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}},
                             "description": "The invoice as a PDF."},
                       **problem_responses(401, 404, 422)},
            summary="The invoice as a PDF")
async def get_invoice_pdf(invoice_id: InvoiceId, principal: ReaderDep,
                          engine: EngineDep) -> Response:
    await _visible(engine, principal, invoice_id)
    name, content = await run_in_threadpool(invoice_pdf, engine, invoice_id)
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})
