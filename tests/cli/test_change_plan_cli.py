"""`subs change-plan` as operators run it (a subprocess against a time-skipping server with the
real worker): `--preview` prints the quote and changes nothing; confirming with the preview's
`at` upgrades now and charges exactly the previewed amount; another currency or an unknown plan
is one clear line and exit 2."""

from __future__ import annotations

import json
import pytest
from sqlmodel import select

from payments.models import ChargeAttempt
from store.engine import get_engine, session_scope
from tests.cli.support import run, subscribe
from tests.support.temporal import venv_binary
from workflows import client_ops

pytestmark = pytest.mark.temporal


async def test_subs_change_plan_preview_then_confirm(stack):
    settings, env = stack
    sub_id = "sub_cli_change_plan"
    first = await subscribe(settings, env, sub_id)
    assert first.plan.amount == 2000 and first.plan.interval == "month"
    cli_env = {"SUBS_DATABASE_URL": settings.database_url,
               "SUBS_TEMPORAL__ADDRESS": env.client.service_client.config.target_host}
    # This checkout's CLI (the venv's `subs` script runs the checkout it was installed from).
    subs = (venv_binary("python"), "-m", "cli.main")

    code, out, err = await run(*subs, "change-plan", sub_id, "team-monthly", "--preview",
                               env=cli_env)
    assert code == 0, err
    quote = json.loads(out)
    assert quote["timing"] == "now" and quote["plan"] == "team-monthly"
    assert 0 <= quote["amount_due"] <= 3000 and quote["next_renewal_amount"] == 5000
    assert f"--proration-date {quote['at']}" in err
    assert (await client_ops.get_state(env.client, sub_id)).plan.id == first.plan.id

    code, out, err = await run(*subs, "change-plan", sub_id, "pro-monthly-eur", env=cli_env)
    assert code == 2 and "currency_mismatch" in err and "Traceback" not in err, err
    code, out, err = await run(*subs, "change-plan", sub_id, "gold", "--preview", env=cli_env)
    assert code == 2 and "no such plan 'gold'" in err, err

    code, out, err = await run(*subs, "change-plan", sub_id, "team-monthly",
                               "--proration-date", quote["at"], env=cli_env)
    assert code == 0, err
    assert json.loads(out)["plan"] == "team-monthly"
    with session_scope(get_engine(settings.database_url)) as session:
        amounts = [c.amount for c in session.exec(select(ChargeAttempt).where(
            ChargeAttempt.subscription_id == sub_id, ChargeAttempt.purpose == "proration"))]
    assert amounts == ([quote["amount_due"]] if quote["amount_due"] else [])
