"""What `subs show` and `subs list` say about a subscription in dunning and after it ended:
the next retry and its attempt number instead of a renewal date, and no renewal for an ended
subscription. The `subs` script of this checkout, as subprocesses, against a time-skipping
server with the real worker and localstripe."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain.requests import Cancel
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.cli.support import SUBS, run, subscribe, wait_for
from tests.fakes_stripe import CARD_DECLINED
from workflows import client_ops

pytestmark = pytest.mark.temporal


async def test_show_in_dunning_and_list_after_the_end(stack):
    settings, env = stack
    sub_id = "sub_cli_dunning"
    first = await subscribe(settings, env, sub_id)
    cli_env = {"SUBS_DATABASE_URL": settings.database_url,
               "SUBS_TEMPORAL__ADDRESS": env.client.service_client.config.target_host}
    PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe)) \
        .add_test_card(first.customer_id, CARD_DECLINED)
    await env.sleep((first.current_period_end - await env.get_current_time()
                     + timedelta(seconds=1)).total_seconds())
    state = await wait_for(env, sub_id, lambda s: s.status.value == "past_due"
                           and s.awaiting_charge is None)

    code, out, err = await run(*SUBS, "show", sub_id, env=cli_env)
    assert code == 0, err
    shown = json.loads(out)
    retry_at = state.dunning.next_retry_at
    assert shown["renewal"] == f"Retrying payment on {retry_at.isoformat()} (attempt 2 of 4)"
    assert shown["dunning"]["failed_attempts"] == 1 and shown["dunning"]["max_attempts"] == 4
    assert shown["dunning"]["next_retry_at"] == retry_at.isoformat()

    code, out, err = await run(*SUBS, "list", "--organization", "org_cli", env=cli_env)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith(sub_id)]
    assert "past_due" in line and "Renewing" not in line
    assert f"access until {state.dunning.grace_until.isoformat()}" in line

    ended = await client_ops.send(env.client, sub_id, Cancel(mode="immediately"))
    await wait_for(env, sub_id, lambda s: s.ended)
    code, out, err = await run(*SUBS, "list", "--organization", "org_cli", env=cli_env)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith(sub_id)]
    assert "canceled" in line and f"ended {ended.ended_at.isoformat()}" in line
    assert "Renewing" not in line and "renews" not in line

    code, out, err = await run(*SUBS, "show", sub_id, env=cli_env)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["status"] == "canceled" and shown["renewal"] is None and "dunning" not in shown
