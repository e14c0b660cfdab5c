"""A run spans renewals (PATCH_RUNS_SPAN_PERIODS): on the real worker and the time-skipping
server a monthly subscription renews several times in one run, each period charged once, its
search attributes and read model following each renewal without a continue-as-new."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflows import contract
from workflows.subscription import PATCH_RUNS_SPAN_PERIODS
from tests.workflows.scenario import MONTHLY

pytestmark = pytest.mark.temporal

RENEWALS = 4


async def test_several_renewals_in_one_run(scenario):
    first = await scenario.start(MONTHLY)
    end = first.current_period_end
    for _ in range(RENEWALS):  # one renewal at a time: each period's own charge and grant
        await scenario.sleep_until(end + timedelta(minutes=1))
        state = await scenario.until(lambda s, end=end: s.current_period_start == end
                                     and s.awaiting_charge is None)
        end = state.current_period_end
    assert state.period_index == RENEWALS and state.status.value == "active"
    assert [c.status for c in scenario.charges()] == ["succeeded"] * (RENEWALS + 1)

    handle = scenario.client.get_workflow_handle(contract.workflow_id(scenario.sub_id))
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert not started.continued_execution_run_id  # the first run, still running
    assert not any(e.HasField("workflow_execution_continued_as_new_event_attributes")
                   for e in history.events)
    markers = [payload.data for e in history.events
               if e.HasField("marker_recorded_event_attributes")
               for value in e.marker_recorded_event_attributes.details.values()
               for payload in value.payloads]
    assert any(PATCH_RUNS_SPAN_PERIODS.encode() in data for data in markers)
    # Visibility follows the renewals by upserts (it used to by continue-as-new).
    described = await handle.describe()
    assert described.typed_search_attributes.get(contract.PERIOD_END) == end
    paid = [e for e in scenario.events() if e.type == "invoice.paid"]
    assert len(paid) == RENEWALS + 1
    print(f"{len(history.events)} events for {RENEWALS} renewals in one run")
