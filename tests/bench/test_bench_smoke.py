"""The benchmarks still measure the right thing: a short history run, a tiny renewal burst and a
tiny API run (floor, direct, HTTP) on the real stack, asserting correctness figures only (never
timings: benchmarks print)."""

from __future__ import annotations

import pytest

from bench.api_latency import compare, summary_text
from bench.api_latency import run as run_api
from bench.burst import Scenario, plan_interval, run_burst
from bench.history import run as run_history
from workflows.subscription import RUN_EVENTS_BOUND

pytestmark = pytest.mark.temporal


async def test_history_of_one_year_is_bounded_per_run():
    result = await run_history(years=1)
    assert result["periods"] == 12
    assert result["runs"] <= 2  # a run spans renewals (RUN_EVENTS_BOUND)
    assert result["final_status"] == "canceled"
    assert result["max_events_per_run"] < RUN_EVENTS_BOUND + 30  # far below 4,096
    assert result["events_per_period"] < 25


async def test_tiny_burst_renews_everyone_exactly_once(sqlite_url):
    [result] = await run_burst(4, [Scenario("smoke", "core", 1000.0)], sqlite_url, period=8,
                               stripe_kind="localstripe", lead_margin=4.0)
    assert result["complete"] and not result["late_start"]
    checks = result["exactly_once"]
    assert checks["double_charges"] == 0
    assert checks["succeeded_charges"] == 8  # first period + one renewal each
    assert checks["distinct_keys"] == checks["distinct_intents"] == 8
    assert checks["stripe_succeeded_intents"] == 8
    assert result["stripe_requests"]["non_2xx"] == 0


async def test_tiny_burst_on_the_stand_in_with_two_workers_a_limit_and_the_loop(sqlite_url):
    """The stand-in counts succeeded intents per key and answers 429 above its limit; two
    worker processes share the queue; each figure has its ratio to the loop."""
    results = await run_burst(4, [Scenario("core", "core", 1000.0),
                                  Scenario("loop", "baseline", 1000.0),
                                  Scenario("lim", "core", 3.0, stripe_limit=4.0)],
                              sqlite_url, period=8, workers=2, lead_margin=4.0)
    for result in results:
        assert result["complete"] and result["missing_renewals"] == 0, result
        assert result["stripe"] == "fast" and result["workers"] == 2
        checks = result["exactly_once"]
        assert checks["double_charges"] == 0
        assert checks["succeeded_charges"] == checks["stripe_succeeded_intents"] == 8
        assert result["vs_loop"]["renewals_per_s"] > 0
        assert result["cpu_ms_per_renewal"]["engine"] > 0
    core, loop, limited = results
    assert loop["vs_loop"]["renewals_per_s"] == 1.0
    assert core["history"]["runs_per_workflow"] == 1  # the renewal did not continue as new
    assert loop["history"]["runs_per_workflow"] >= 2  # one run per period (and the next)
    assert limited["stripe_requests"]["max_per_second"] <= 4
    assert limited["stripe_requests"]["limit_used_pct"] is not None


async def test_api_paths_are_measured_against_the_floor_in_one_run(sqlite_url):
    result = await run_api(clients=2, rounds=1, db="sqlite", make_db=lambda *_: sqlite_url,
                           single_rounds=1)
    paths = ["floor", "floor+index", "direct", "http"]
    assert [r["path"] for r in result["concurrent"]] == paths
    assert [r["path"] for r in result["one_client"]] == paths
    for row in result["concurrent"] + result["one_client"]:
        assert row["errors"] == row["warmup_errors"] == 0, row["failures"]
        assert row["calls"] == row["clients"] * 2 * row["rounds"]
        assert sum(op["calls"] for op in row["operations"]) == row["calls"]
    assert [r["clients"] for r in result["one_client"]] == [1, 1, 1, 1]
    assert set(result["concurrent"][3]["cpu_ms_per_call"]) == {"server", "worker", "api",
                                                               "total"}
    floor = result["ratios"]["floor"]
    assert floor["throughput"] == floor["p99"] == floor["one_client_p50"] == 1.0
    for path in ("floor+index", "direct", "http"):
        ratios = result["ratios"][path]
        assert all(ratios[k] > 0 for k in ("throughput", "p99", "one_client_p50"))
    assert "goals for http" in summary_text(result)


def test_ratios_and_goals_are_read_against_the_floor():
    def row(path, per_s, p50, p99, cpu):
        return {"path": path, "calls_per_s": per_s, "p50_ms": p50, "p99_ms": p99,
                "cpu_ms_per_call": {"total": cpu}, "errors": 0, "warmup_errors": 0}

    result = {"clients": 50,
              "concurrent": [row("floor", 100, 0, 300, 10), row("direct", 50, 0, 600, 25),
                             row("http", 70, 0, 600, 40)],
              "one_client": [row("floor", 0, 10, 0, 0), row("direct", 0, 20, 0, 0),
                             row("http", 0, 25, 0, 0)]}
    result["ratios"] = compare(result["concurrent"], result["one_client"])
    assert result["ratios"]["direct"] == {"throughput": 0.5, "p99": 2.0, "cpu_per_call": 2.5,
                                          "one_client_p50": 2.0}
    assert result["concurrent"][2]["vs_floor"]["throughput"] == 0.7
    text = summary_text(result)
    assert "throughput >= 0.6x: 0.7x (met)" in text
    assert "p99 <= 2.5x: 2x (met)" in text
    assert "one client p50 <= 2x: 2.5x (not met)" in text


def test_periods_past_a_thousand_seconds_are_whole_minutes():
    assert plan_interval(8) == ("second", 8)
    assert plan_interval(1000) == ("second", 1000)
    assert plan_interval(1500) == ("minute", 25)
    assert plan_interval(1501) == ("minute", 26)  # rounded up: the activation burst fits
