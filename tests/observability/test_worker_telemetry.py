"""The deployed worker process (``python -m workers.main``) serves Temporal SDK runtime metrics in
Prometheus text format at SUBS_WORKER_METRICS_ADDRESS and logs one JSON object per line, with
the subscription id and billing period on the lines of a renewal's activities."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid

import pytest

from config.plans import load_catalog
from config.settings import DEFAULT_PLANS_FILE, Settings, TemporalSettings
from tests.fakes_stripe import CARD_OK, free_port, stripe_settings
from tests.faults.helpers import WorkerProcess, new_customer, start, wait_for, worker_env
from tests.support.temporal import time_skipping_env

pytestmark = pytest.mark.temporal


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.headers.get("Content-Type", ""), resp.read().decode()


async def test_worker_serves_prometheus_metrics_and_logs_json(sqlite_url, localstripe_url):
    env = await time_skipping_env()
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(
        database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
        temporal=TemporalSettings(address=env.client.service_client.config.target_host,
                                  task_queue=f"telemetry-{uuid.uuid4().hex[:8]}"))
    worker = WorkerProcess(worker_env(settings, SUBS_WORKER_METRICS_ADDRESS=address)).start()
    customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
    try:
        new_customer(settings, customer, CARD_OK)
        await start(env.client, settings, sub_id, customer,
                    load_catalog(DEFAULT_PLANS_FILE).get("pro-monthly"))
        state = await wait_for(env.client, sub_id, lambda s: s.status.value == "active"
                               and s.awaiting_charge is None)
        await asyncio.sleep(0.5)  # the last activity's log line is flushed

        content_type, text = await asyncio.to_thread(scrape, f"http://{address}/metrics")
        assert content_type.startswith("text/plain")
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert any(line.startswith("temporal_activity_execution_latency")
                   and 'activity_type="charge"' in line for line in samples), text[:2000]
        assert any(line.startswith("temporal_workflow_task_execution_latency")
                   for line in samples), text[:2000]
        assert f'task_queue="{settings.temporal.task_queue}"' in text

        out = worker.output()
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
        charge = next(line for line in lines if line["message"] == "charge succeeded")
        assert charge["subscription_id"] == sub_id and charge["period"] == state.period_key
        assert charge["activity"] == "charge" and charge["amount"] == state.plan.amount
        assert charge["workflow_id"] == f"subscription-{sub_id}"
        grant = next(line for line in lines if line["message"].startswith("granted"))
        assert (grant["subscription_id"], grant["period"]) == (sub_id, state.period_key)
        event = next(line for line in lines if line.get("event_type") == "invoice.paid")
        assert event["subscription_id"] == sub_id  # derived from the workflow id
    finally:
        worker.stop()
        await env.shutdown()


def test_a_taken_metrics_port_does_not_stop_the_worker(caplog):
    """A second local worker (``make worker`` next to ``make dev``) finds the port taken: it
    runs without metrics and says so, instead of crashing."""
    import socket

    from workers.client import worker_runtime

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = "127.0.0.1:%d" % taken.getsockname()[1]
        with caplog.at_level("ERROR", logger="workers"):
            assert worker_runtime(Settings(worker_metrics_address=address)) is not None
    assert f"worker metrics not served at {address}" in caplog.text
