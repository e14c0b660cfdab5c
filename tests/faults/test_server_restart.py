"""The Temporal server is killed (SIGKILL) and restarted on its persistent database file while a
subscription runs: the worker reconnects by itself, the renewal timer still fires, and the renewal
charges once, grants credits once and records each event once.

Also exports the history with the README's CLI command (``temporal workflow show --output json``)
and replays it with the SDK's Replayer, as tests/replay does for the committed histories.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.plans import Plan
from domain.requests import Cancel
from tests.fakes_stripe import CARD_OK
from tests.faults.helpers import (assert_exactly_once, books, new_customer, server_settings,
                                  start, wait_for)
from tests.support.devserver import DevServer
from tests.support.temporal import venv_binary
from workers.main import build_worker
from workflows.connection import data_converter
from workflows import client_ops, contract
from workflows.subscription import SubscriptionWorkflow

pytestmark = pytest.mark.temporal

PERIOD = 15  # seconds: the server is down and back before the renewal is due, even on a busy machine
PLAN = Plan(id="restart-fast", name="Fast", amount=900, currency="usd", interval="second",
            interval_count=PERIOD, included_credits=70)


async def test_server_killed_and_restarted_on_its_file(tmp_path, localstripe_url, sqlite_url):
    server = DevServer(tmp_path / "temporal.db")
    server.start()
    try:
        client = await server.connect()
        settings = server_settings(server.address, sqlite_url, localstripe_url, "restart")
        customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
        new_customer(settings, customer, CARD_OK)
        async with build_worker(client, settings):
            await start(client, settings, sub_id, customer, PLAN)
            before = await wait_for(client, sub_id, lambda s: s.status.value == "active"
                                    and s.awaiting_charge is None)
            events_before = await client_ops.get_events(client, sub_id)
            server.kill()
            server.start()  # same file, same port: the worker's client reconnects by itself
            await server.connect()
            after = await client_ops.get_state(client, sub_id)
            # Nothing lost. On a loaded machine the renewal may already have begun, so the state
            # after the restart is `before` or a later state that still holds all of its events.
            kept = {e.id: e for e in await client_ops.get_events(client, sub_id)}
            assert after.event_seq >= before.event_seq
            assert events_before and all(kept.get(e.id) == e for e in events_before)
            if after.event_seq == before.event_seq and after.awaiting_charge is None:
                assert after == before

            renewed = await wait_for(client, sub_id, lambda s: s.period_index >= 1
                                     and s.awaiting_charge is None, timeout=PERIOD + 20)
            assert renewed.status.value == "active"
            final = await client_ops.send(client, sub_id, Cancel(mode="immediately"))
        assert_exactly_once(books(settings, customer, sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)

        # README "Changing the workflow safely": export a history with the CLI, replay it.
        first_run = (await client.get_workflow_handle(contract.workflow_id(sub_id))
                     .fetch_history()).events[0] \
            .workflow_execution_started_event_attributes.first_execution_run_id
        proc = await asyncio.create_subprocess_exec(
            venv_binary("temporal"), "workflow", "show", "--workflow-id",
            contract.workflow_id(sub_id), "--run-id", first_run, "--output", "json",
            "--address", server.address, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        history = WorkflowHistory.from_json(contract.workflow_id(sub_id), out.decode())
        assert history.events[-1].HasField("workflow_execution_completed_event_attributes") \
            or history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        replayer = Replayer(workflows=[SubscriptionWorkflow],
                            data_converter=data_converter())
        assert (await replayer.replay_workflow(history)).replay_failure is None
    finally:
        server.stop()
