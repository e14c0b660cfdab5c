"""The testing kit (subscription_testing): the README's example and docs/testing.md's run
verbatim in a pytest session of their own, as a user's project would run them; two tests of one
session each skip a year on a fresh clock (the session-scoped server trap); the plugin's entry
point names the module the suite registers."""

from __future__ import annotations

import re
import time
import tomllib
from datetime import UTC, datetime, timedelta

import pytest

import subscription_testing.plugin
from config.settings import REPO_ROOT
from domain.errors import RequestRefused
from domain.plans import Plan

pytestmark = pytest.mark.temporal

# No included credits: fewer activities per period.
LEAN = Plan(id="monthly-lean", name="Monthly", amount=1500, currency="usd", interval="month")


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.M | re.S)


def readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Testing your integration"):]
    section = section[:section.index("\n## ")]
    [block] = python_blocks(section)
    return block


def test_the_readme_and_docs_examples_pass_as_written(pytester, monkeypatch, localstripe_url):
    """In a process of its own, as a user's project runs them (this checkout first on the
    path, in case another one is installed; this session's localstripe)."""
    docs = python_blocks((REPO_ROOT / "docs" / "testing.md").read_text())
    assert len(docs) == 1
    pytester.makepyfile(test_readme_example=readme_example(), test_docs_example=docs[0])
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv(subscription_testing.plugin.LOCALSTRIPE_URL_VARIABLE, localstripe_url)
    result = pytester.runpytest_subprocess("-p", "subscription_testing.plugin", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize("turn", ["first", "second"])
async def test_each_test_skips_a_year_on_a_fresh_clock(subscription_kit, turn):
    started = time.monotonic()
    assert abs(await subscription_kit.now() - datetime.now(UTC)) < timedelta(minutes=5)
    sub = await subscription_kit.subscribe(LEAN)
    state = await sub.advance(timedelta(days=366))
    assert state.period_index == 12
    assert len(sub.charges(status="succeeded")) == len(sub.stripe_charges()) == 13
    assert time.monotonic() - started < 15


def test_the_entry_point_is_the_module_the_suite_registers(request):
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    [(name, target)] = project["project"]["entry-points"]["pytest11"].items()
    assert name == target == subscription_testing.plugin.__name__
    assert target.split(".")[0] in project["tool"]["setuptools"]["packages"]
    assert request.config.pluginmanager.get_plugin(name) is subscription_testing.plugin


async def test_requests_answer_the_settled_state(subscription_kit):
    """The request helpers end to end, through client_ops: refusals raise with the rule, and an
    immediate cancel's full refund is in our records and at Stripe when it answers."""
    sub = await subscription_kit.subscribe("pro-monthly")
    with pytest.raises(RequestRefused):
        await sub.reactivate()  # nothing to reactivate
    assert (await sub.cancel()).cancel_at_period_end
    assert not (await sub.reactivate()).cancel_at_period_end
    assert (await sub.pause(mode="now")).status == "paused"
    assert (await sub.resume(anchor="keep")).status == "active"
    await sub.advance(timedelta(days=10))
    state = await sub.cancel(mode="immediately", refund="full")
    assert state.status == "canceled"
    [refund] = sub.refunds()
    assert refund.amount == 2000
    assert [r["amount"] for r in sub.stripe_refunds(refund.payment_intent_id)] == [2000]
    assert sub.event_types()[-1] == "customer.subscription.deleted"
