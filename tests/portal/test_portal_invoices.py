"""The portal's invoices over HTTP with the real worker and localstripe: the customer sees their
own invoices (number, date, status in words, total) and downloads each PDF from a portal route;
another customer's invoice is a 404, like an unknown id. The card on file is named by brand and
last four digits, from Stripe; a payment method Stripe does not know shows its id."""

from __future__ import annotations

from api.portal.present import money
from payments import store as payments_store
from store.engine import get_engine
from tests.api.helpers import create_customer, create_subscription
from tests.portal.helpers import enter


async def test_own_invoices_and_their_pdfs_only(api, org, other_org, settings):
    customer = await create_customer(api, org)
    await create_subscription(api, org, customer["id"])
    someone = await create_customer(api, org, email="grace@example.com")
    await create_subscription(api, org, someone["id"])
    stranger = await create_customer(api, other_org, email="alan@example.com")
    await create_subscription(api, other_org, stranger["id"])

    def invoices_of(owner, who):
        return api.get("/v1/invoices", params={"customer": who["id"]}, headers=owner.owner)

    mine = (await invoices_of(org, customer)).json()["data"]
    theirs = (await invoices_of(org, someone)).json()["data"]
    foreign = (await invoices_of(other_org, stranger)).json()["data"]
    assert len(mine) == 1 and mine[0]["status"] == "paid"
    await enter(api, org, customer["id"])

    home = (await api.get("/portal")).text
    assert "Invoices and receipts" in home and "Visa ending 4242" in home
    assert mine[0]["number"] in home and "Paid" in home
    assert money(mine[0]["total"], mine[0]["currency"]) in home
    assert theirs[0]["number"] not in home  # numbered after mine, in the same organization
    assert f'/portal/invoices/{mine[0]["id"]}/pdf' in (await api.get("/portal/invoices")).text

    pdf = await api.get(f"/portal/invoices/{mine[0]['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{mine[0]["number"]}.pdf"'
    assert pdf.headers["cache-control"] == "no-store"
    for other in (theirs[0]["id"], foreign[0]["id"], "in_unknown"):
        r = await api.get(f"/portal/invoices/{other}/pdf")
        assert r.status_code == 404 and "no such invoice" in r.text, other

    # A payment method Stripe does not know: the page names it by its id.
    payments_store.set_default_payment_method(get_engine(settings.database_url),
                                              customer["id"], "pm_unknown_to_stripe")
    assert "<code>pm_unknown_to_stripe</code>" in (await api.get("/portal")).text
