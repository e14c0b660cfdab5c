"""`subs demo --scenario ...` played end to end as a person runs it: the `subs` script as a
subprocess against the `make dev` stack (dev server, worker and API processes, localstripe,
an SMTP sink), on a `demo` plan of 6 s and 1 s retries so each story takes seconds."""

from __future__ import annotations

import re

import pytest

from tests.cli.support import SUBS, run
from tests.support.local_stack import local_stack
from workflows import client_ops

pytestmark = pytest.mark.temporal

PLANS = """plans:
  - {id: demo, name: Demo, amount: 500, currency: usd, interval: second, interval_count: 6,
     included_credits: 1000, features: []}
"""


@pytest.fixture(scope="module")
async def stack(tmp_path_factory, localstripe_url):
    tmp = tmp_path_factory.mktemp("demo-stack")
    (tmp / "plans.yaml").write_text(PLANS)
    async with local_stack(tmp, localstripe_url, SUBS_PLANS_FILE=str(tmp / "plans.yaml"),
                           SUBS_DUNNING__RETRY_DELAYS='["PT1S","PT1S","PT1S"]',
                           SUBS_DUNNING__GRACE_PERIOD="PT2S",
                           SUBS_NOTIFICATIONS__ENDING_NOTICE="PT3S",
                           SUBS_NOTIFICATIONS__BACKOFF_INITIAL="PT1S") as stack:
        yield stack


async def demo(stack, scenario: str) -> tuple[str, str]:
    code, out, err = await run(*SUBS, "demo", "--scenario", scenario, "--api-url",
                               stack.api_url, "--timeout", "40", env=stack.env)
    assert code == 0, f"{err}\n{out}"
    sub_id = re.search(r"^subscription\s+(\S+)", out, re.M).group(1)
    assert out.rstrip().endswith(
        f"Web UI:  http://127.0.0.1:8233/namespaces/default/workflows/subscription-{sub_id}")
    return sub_id, out


def in_order(out: str, *patterns: str) -> None:
    at = 0
    for pattern in patterns:
        found = re.compile(pattern).search(out, at)
        assert found, f"{pattern!r} not after position {at} in:\n{out}"
        at = found.end()


async def test_dunning_reaches_past_due_then_canceled(stack):
    sub_id, out = await demo(stack, "dunning")
    in_order(out, r"invoice\.paid\s+charge succeeded: 5\.00",
             r"incomplete -> active", r"card swapped to 4000000000000341",
             r"invoice\.payment_failed\s+charge declined .*attempt 1",
             r"active -> past_due", r"payment retry \d\d:\d\d:\d\d \(attempt 2 of 4\)",
             r"attempt 4", r"past_due -> canceled \(reason: payment_failed\)",
             r"now canceled")
    assert re.search(r"email payment_failed\s+to demo@example\.com: sent", out), out
    state = await client_ops.get_state(stack.client, sub_id)
    assert state.status.value == "canceled" and state.cancellation.reason == "payment_failed"


async def test_cancel_at_period_end(stack):
    sub_id, out = await demo(stack, "cancel")
    in_order(out, r"incomplete -> active", r"active -> non_renewing; Cancelling on",
             r"non_renewing -> canceled", r"now canceled")
    assert re.search(r"email cancel_confirmation\s+to demo@example\.com: sent", out), out
    in_order(out, r"email ending_notice\s+to demo@example\.com: scheduled for",
             r"email ending_notice\s+to demo@example\.com: sent")


async def test_pause_resumes_by_itself(stack):
    sub_id, out = await demo(stack, "pause")
    in_order(out, r"incomplete -> active", r"paused now, resuming by itself",
             r"customer\.subscription\.paused\s+active -> paused",
             r"customer\.subscription\.resumed\s+paused -> active", r"now active; Renewing on")


async def test_trial_then_first_charge(stack):
    sub_id, out = await demo(stack, "trial")
    in_order(out, r"customer\.subscription\.created\s+status trialing; Trial ends on",
             r"invoice\.paid\s+charge succeeded: 5\.00", r"-> active",
             r"now active; Renewing on")
