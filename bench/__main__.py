"""`python -m bench` (`make bench BENCH_ARGS="burst --n 1000"`): benchmarks run by hand.

Subcommands: burst (renewal burst, core vs plain loop, under Stripe rate limits), api
(cancel/reactivate under concurrent clients: a bare update floor, the project's update direct
and through HTTP, with ratios to the floor), history (events per period and per run over a
long subscription), all. Each prints a table and writes JSON to bench/results/ (or --json).
Nothing here is a timed test; tests/bench only checks the correctness figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bench import report

BURST_COLUMNS = [
    ("scenario", "scenario"), ("N", "n"), ("workers", "workers"),
    ("Stripe limit/s", "stripe_limit_per_s"), ("period s", "period_s"),
    ("activation s", "activation_burst_s"), ("renewal burst s", "renewal_burst_s"),
    ("renewals/s", "renewals_per_s"), ("x loop renewals/s", "vs_loop.renewals_per_s"),
    ("CPU ms/renewal", "cpu_ms_per_renewal.engine"),
    ("x loop CPU", "vs_loop.engine_cpu_per_renewal"),
    ("Stripe mean req/s", "stripe_requests.mean_per_second_full"),
    ("% of limit", "stripe_requests.limit_used_pct"),
    ("429s", "stripe_requests.status_429"), ("double charges", "exactly_once.double_charges"),
    ("missing", "missing_renewals"), ("events/run", "history.events_per_run"),
    ("runs/wf", "history.runs_per_workflow"),
    ("worker MB (peak)", "memory_mb.worker.peak_rss_mb"),
    ("server MB (peak)", "memory_mb.server.peak_rss_mb"),
]
API_COLUMNS = [
    ("path", "path"), ("calls", "calls"), ("errors", "errors"), ("calls/s", "calls_per_s"),
    ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("CPU ms/call", "cpu_ms_per_call.total"),
    ("server", "cpu_ms_per_call.server"), ("worker", "cpu_ms_per_call.worker"),
    ("api", "cpu_ms_per_call.api"), ("x floor calls/s", "vs_floor.throughput"),
    ("x floor p99", "vs_floor.p99"), ("x floor CPU", "vs_floor.cpu_per_call"),
]
API_ONE_CLIENT_COLUMNS = [
    ("path", "path"), ("calls", "calls"), ("errors", "errors"), ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"), ("CPU ms/call", "cpu_ms_per_call.total"),
    ("x floor p50", "vs_floor.p50"),
]
# JSON file names that differ from the command: `api` results now carry the floor.
RESULT_NAMES = {"api": "api-floor"}


def _database(kind: str, tmp: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{Path(tmp) / 'bench.db'}"
    import uuid

    import sqlalchemy
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


async def burst(args) -> dict:
    from bench.burst import Scenario, run_burst

    scenarios = [Scenario("core", "core", args.unlimited_rate),
                 Scenario("baseline", "baseline", args.unlimited_rate)]
    # The workers' limiter one below Stripe's limit: the bucket lets rate + 1 requests into
    # one wall-clock second (README "Stripe's rate limit").
    scenarios += [Scenario(f"core-limit{int(r)}", "core", r - 1, stripe_limit=r)
                  for r in args.limits]
    if args.only:
        scenarios = [s for s in scenarios if s.name in args.only]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results = await run_burst(args.n, scenarios, _database(args.db, tmp), args.period,
                                  args.expect, args.start_rate, args.workers, args.stripe)
    print(report.table(results, BURST_COLUMNS))
    print("CPU ms/renewal: workers + Temporal server during the renewal burst, divided by N "
          "(Stripe's own CPU is in the JSON); x loop: the ratio to the plain loop in this run.")
    return {"n": args.n, "db": args.db, "workers": args.workers, "stripe": args.stripe,
            "results": results}


async def api(args) -> dict:
    from bench.api_latency import run, summary_text
    result = await run(args.clients, args.rounds, args.db, _database, args.one_client_rounds)
    print(f"{args.clients} clients, {args.rounds} rounds of cancel + reactivate each:")
    print(report.table(result["concurrent"], API_COLUMNS))
    print(f"\nOne client alone, {args.one_client_rounds} rounds:")
    print(report.table(result["one_client"], API_ONE_CLIENT_COLUMNS))
    print("\n" + summary_text(result))
    return result


async def history(args) -> dict:
    from bench.history import run
    result = await run(args.years)
    print(report.table([result], [
        ("years", "years"), ("periods", "periods"), ("runs", "runs"),
        ("events total", "events_total"), ("events/period", "events_per_period"),
        ("max events/run", "max_events_per_run"), ("max run bytes", "max_history_bytes"),
        ("ended", "final_status")]))
    return result


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # so `finally` stops the servers and workers we started


def main(argv: list[str] | None = None) -> int:
    import signal
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the JSON here instead of bench/results/")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--server-config", action="append", default=[],
                        help="dynamic config for the Temporal dev server, KEY=JSON, e.g. "
                        "system.enableActivityEagerExecution=true (repeatable)")
    parser.add_argument("--server-pragma", action="append", default=[],
                        help="SQLite pragma for the Temporal dev server's store, e.g. "
                        "journal_mode=wal (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("burst", "all"):
        p = sub.add_parser(name)
        p.add_argument("--n", type=int, default=200,
                       help="subscriptions renewing at once (documented: 1000, 10000)")
        p.add_argument("--period", type=int, default=None,
                       help="plan interval in seconds (default: long enough for the burst)")
        p.add_argument("--expect", type=float, default=4.0,
                       help="renewals/s assumed when choosing the period (so the activation "
                       "burst ends before the renewal burst starts)")
        p.add_argument("--start-rate", type=float, default=8.0,
                       help="workflow starts/s assumed when choosing T0")
        p.add_argument("--limits", type=float, nargs="*", default=[25.0],
                       help="Stripe request-rate limits to run the core under (the stand-in "
                       "answers 429 above it; the workers' limiter is set one below)")
        p.add_argument("--unlimited-rate", type=float, default=1000.0,
                       help="limiter setting for the unthrottled runs")
        p.add_argument("--only", nargs="*", help="scenario names to run (core, baseline, "
                       "core-limit25, core-limit100)")
        p.add_argument("--workers", type=int, default=1,
                       help="worker processes per scenario (K; they share the task queue)")
        p.add_argument("--stripe", choices=["fast", "localstripe"], default="fast",
                       help="the benchmark's constant-cost Stripe stand-in (bench/fast_stripe.py)"
                       " or localstripe")
    for name in ("api", "all"):
        p = sub.choices.get(name) or sub.add_parser(name)
        p.add_argument("--clients", type=int, default=50)
        p.add_argument("--rounds", type=int, default=4,
                       help="cancel+reactivate pairs per client")
        p.add_argument("--one-client-rounds", type=int, default=10,
                       help="cancel+reactivate pairs of the one-client run of each path")
    for name in ("history", "all"):
        p = sub.choices.get(name) or sub.add_parser(name)
        p.add_argument("--years", type=int, default=10)
    args = parser.parse_args(argv)
    from bench import stack
    stack.SERVER_PRAGMAS[:] = args.server_pragma
    stack.SERVER_CONFIG[:] = args.server_config
    steps = {"burst": [burst], "api": [api], "history": [history],
             "all": [history, api, burst]}[args.command]
    payload = {}
    for step in steps:
        payload[step.__name__] = asyncio.run(step(args))
    path = report.save(args.command, payload if args.command == "all"
                       else payload[args.command], args.json,
                       RESULT_NAMES.get(args.command))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
