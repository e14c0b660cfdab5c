"""The benchmarks still measure the right thing: a short history run and a tiny renewal burst
on the real stack, asserting correctness figures only (never timings: benchmarks print)."""

from __future__ import annotations

import pytest

from bench.burst import Scenario, run_burst
from bench.history import run as run_history

pytestmark = pytest.mark.temporal


async def test_history_of_one_year_is_bounded_per_run():
    result = await run_history(years=1)
    assert result["periods"] == 12
    assert result["runs"] == 12  # continue-as-new after every renewal
    assert result["final_status"] == "canceled"
    assert result["max_events_per_run"] < 150  # far below the 4,096 suggestion
    assert result["events_per_run_typical"] < 60


async def test_tiny_burst_renews_everyone_exactly_once(sqlite_url):
    [result] = await run_burst(4, [Scenario("smoke", "core", 1000.0)], sqlite_url, period=8)
    assert result["complete"] and not result["late_start"]
    checks = result["exactly_once"]
    assert checks["double_charges"] == 0
    assert checks["succeeded_charges"] == 8  # first period + one renewal each
    assert checks["distinct_keys"] == checks["distinct_intents"] == 8
    assert checks["stripe_succeeded_intents"] == 8
    assert result["stripe_requests"]["non_2xx"] == 0
