"""API latency: C concurrent clients, each on its own subscription, doing cancel at_period_end
then reactivate (each a Temporal update round-trip through the real HTTP API under uvicorn, the
worker applying it and recording its events). Latency is measured by the clients, end to end.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time

import httpx

from accounts import keys
from bench.burst import stripe_settings, worker_env
from bench.stack import Child, TemporalServer, free_port, start_localstripe, wait_port
from config.settings import Settings, TemporalSettings
from store.engine import get_engine
from store.migrate import upgrade

CARD_OK = "4242424242424242"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary(name: str, samples: list[float], errors: int) -> dict:
    ms = [s * 1000 for s in samples]
    return {"operation": name, "calls": len(ms), "errors": errors,
            "p50_ms": round(percentile(ms, 50), 1), "p90_ms": round(percentile(ms, 90), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms, default=0), 1),
            "mean_ms": round(statistics.fmean(ms), 1) if ms else None}


async def run(clients: int, rounds: int, db: str, make_db) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        db_url = make_db(db, tmp)
        upgrade(db_url)
        stripe = start_localstripe()
        server = TemporalServer()
        settings = Settings(database_url=db_url, stripe=stripe_settings(stripe.url, 1000),
                            temporal=TemporalSettings(address=server.address))
        env = worker_env(settings, "bench-api")
        port = free_port()
        worker = Child.start("worker", [sys.executable, "-m", "workers.main"], env)
        api = Child.start("api", [sys.executable, "-m", "api"],
                          {**env, "SUBS_API_HOST": "127.0.0.1", "SUBS_API_PORT": str(port)})
        try:
            wait_port(port, 60, api.process)
            return await _measure(f"http://127.0.0.1:{port}", db_url, clients, rounds,
                                  worker, api, server)
        finally:
            api.stop()
            worker.stop()
            server.stop()
            stripe.stop()


async def _measure(base: str, db_url: str, clients: int, rounds: int, worker: Child,
                   api: Child, server: TemporalServer) -> dict:
    _, owner = keys.create_organization_with_owner(get_engine(db_url), "Bench")
    auth = {"Authorization": f"Bearer {owner}"}
    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60, limits=limits) as http:
        sem = asyncio.Semaphore(10)

        async def setup(i: int) -> str:
            async with sem:
                r = await http.post("/v1/customers", json={
                    "email": f"bench{i}@example.com", "name": f"Bench {i}",
                    "payment_method": CARD_OK})
                r.raise_for_status()
                r = await http.post("/v1/subscriptions", json={
                    "customer": r.json()["id"], "plan": "pro-monthly"})
                r.raise_for_status()
                return r.json()["id"]

        subs = await asyncio.gather(*(setup(i) for i in range(clients)))

    samples: dict[str, list[float]] = {"cancel": [], "reactivate": []}
    errors = {"cancel": 0, "reactivate": 0}

    async def client(sub: str) -> None:
        # One HTTP client (own connection) per simulated caller.
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as own:
            for r in range(rounds + 1):  # round 0 warms connections and caches, not counted
                for op, body in (("cancel", {"mode": "at_period_end"}), ("reactivate", None)):
                    t = time.perf_counter()
                    resp = await own.post(f"/v1/subscriptions/{sub}/{op}", json=body)
                    took = time.perf_counter() - t
                    if r == 0:
                        continue
                    if resp.status_code == 200:
                        samples[op].append(took)
                    else:
                        errors[op] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(s) for s in subs))
    wall = time.perf_counter() - started
    return {"clients": clients, "rounds": rounds,
            "wall_seconds_including_warmup": round(wall, 1),
            "operations": [summary(op, samples[op], errors[op]) for op in samples],
            "memory_mb": {"worker": worker.memory(), "api": api.memory(),
                          "server": server.memory()}}
