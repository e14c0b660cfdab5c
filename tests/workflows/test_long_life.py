"""Three years of a monthly subscription anchored on Jan 31 of a leap year, on the real worker:
calendar-correct periods, exactly one charge per period, and a bounded history per run (a
run spans renewals and continues as new once it reaches RUN_EVENTS_BOUND events)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from domain.model import Status
from domain.periods import period_key
from domain.plans import Plan
from workflows import contract
from workflows.subscription import RUN_EVENTS_BOUND

pytestmark = pytest.mark.temporal

# No included credits: fewer activities per period, so three years run in a few seconds.
MONTHLY_NO_CREDITS = Plan(id="monthly-lean", name="Monthly", amount=1500, currency="usd",
                          interval="month")
MAX_EVENTS_PER_RENEWAL = 20
MONTHS = 36


def _expected_starts() -> list[datetime]:
    starts, year, month = [], 2028, 1
    for _ in range(MONTHS + 1):
        last = {2: 29 if year % 4 == 0 else 28, 4: 30, 6: 30, 9: 30, 11: 30}.get(month, 31)
        starts.append(datetime(year, month, last, tzinfo=UTC))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return starts


async def _run_histories(scenario) -> list[int]:
    """Event counts of every run of the chain, latest first, following continue-as-new back
    through each run's WorkflowExecutionStarted."""
    wid = contract.workflow_id(scenario.sub_id)
    counts, run_id = [], None
    while True:
        history = await scenario.client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        counts.append(len(history.events))
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            return counts


async def test_jan_31_of_a_leap_year_over_three_years(scenario):
    starts = _expected_starts()
    assert starts[:4] == [datetime(2028, 1, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC),
                          datetime(2028, 3, 31, tzinfo=UTC), datetime(2028, 4, 30, tzinfo=UTC)]
    assert starts[13] == datetime(2029, 2, 28, tzinfo=UTC)
    scheduled = await scenario.start(MONTHLY_NO_CREDITS, start_date=starts[0],
                                     wait_status="scheduled")
    assert scheduled.billing_cycle_anchor == starts[0]

    await scenario.sleep_until(starts[MONTHS] - timedelta(days=1))
    final = await scenario.until(lambda s: s.period_index == MONTHS - 1
                                 and s.awaiting_charge is None, timeout=120)
    assert final.status == Status.ACTIVE
    assert (final.current_period_start, final.current_period_end) == (starts[-2], starts[-1])

    charges = scenario.charges()
    assert [c.period_key for c in charges] == [period_key(s) for s in starts[:MONTHS]]
    assert all(c.status == "succeeded" and c.amount == 1500 for c in charges)
    assert [c.purpose for c in charges] == ["first_period"] + ["renewal"] * (MONTHS - 1)
    intents = scenario.stripe_intents()
    assert Counter(pi["status"] for pi in intents) == {"succeeded": MONTHS}
    assert sorted(pi["metadata"]["period_key"] for pi in intents) == [c.period_key
                                                                      for c in charges]
    paid = [e for e in scenario.events() if e.type == "invoice.paid"]
    assert [e.data["current_period_end"] for e in paid] == [s.isoformat()
                                                            for s in starts[1:MONTHS + 1]]

    counts = await _run_histories(scenario)
    print("history events per run (latest first):", counts)
    assert 2 <= len(counts) <= MONTHS // 6, counts  # runs span renewals, and do end
    # Each run ends at the first idle point past the bound: after at most one more renewal.
    assert max(counts) < RUN_EVENTS_BOUND + MAX_EVENTS_PER_RENEWAL, counts
