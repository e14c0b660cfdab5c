"""One name per request (its kind) for signals and updates alike, handled from one table;
update names of earlier versions still answered; a name we do not know, or input that is not
a request, is refused and recorded (signals: the `rejected_signals` query; updates: a 422-like
refusal), never dropped by the SDK before the workflow sees it."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.requests import Cancel, Reactivate
from tests.workflows.scenario import Scenario
from workflows import client_ops, contract


async def test_names_malformed_input_and_legacy_update_names(env, settings, engine, payments,
                                                             worker):
    scenario = Scenario(env, settings, engine, payments)
    first = await scenario.start()
    handle = env.client.get_workflow_handle(contract.workflow_id(scenario.sub_id))

    await handle.signal("cancel", "junk")  # what `--input '"junk"'` sends
    await handle.signal("refund_everything", {})
    rejected = await scenario.until_rejected(2)
    assert [(r.kind, r.code) for r in rejected] == [("cancel", "malformed_request"),
                                                     ("refund_everything", "unknown_request")]
    assert "not a valid request" in rejected[0].message
    assert (await scenario.state()).status == first.status  # nothing changed

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update("cancel", {"mode": "sometimes"})
    refused = client_ops.refusal_from(failed.value.cause)
    assert (refused.code, refused.http_status) == ("malformed_request", 422)
    assert "mode" in refused.message

    # the update name of earlier versions, and the new one, take the same path
    state = await handle.execute_update("cancel_subscription", Cancel(mode="at_period_end"),
                                        result_type=type(first))
    assert state.status.value == "non_renewing"
    state = await handle.execute_update("reactivate", Reactivate(), result_type=type(first))
    assert state.status.value == "active"
    assert set(contract.REQUEST_TYPES) == {
        "cancel", "reactivate", "postpone", "payment_method_updated", "pause", "resume",
        "change_plan", "accept_retention_offer", "retry"}
    assert set(contract.LEGACY_UPDATE_NAMES.values()) <= set(contract.REQUEST_TYPES)
