"""`make dev`'s localstripe keeps its Stripe data in a file of the stack's own (var/), not in
the /tmp file every localstripe on the machine shares: what it stores survives a restart of
the stack, and another localstripe (a test run, a second stack) is left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from config.settings import REPO_ROOT
from devstack.processes import wait_for_port
from payments.gateway import StripeGateway
from tests.fakes_stripe import free_port, stripe_settings

SHARED = Path("/tmp/localstripe.pickle")


def _start(store: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "devstack.localstripe", str(store), str(port)],
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port, 30)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def test_the_store_is_the_stacks_own_and_survives_a_restart(tmp_path):
    store = tmp_path / "var" / "localstripe.pickle"
    shared_before = SHARED.stat().st_mtime_ns if SHARED.exists() else None
    port = free_port()
    proc = _start(store, port)
    try:
        gateway = StripeGateway(stripe_settings(f"http://127.0.0.1:{port}"))
        customer = gateway.create_customer("devstack-store-test", email="ada@example.com")
    finally:
        _stop(proc)
    assert store.exists() and store.stat().st_size > 0
    assert (SHARED.stat().st_mtime_ns if SHARED.exists() else None) == shared_before

    port = free_port()
    proc = _start(store, port)
    try:
        gateway = StripeGateway(stripe_settings(f"http://127.0.0.1:{port}"))
        found = gateway.client.v1.customers.retrieve(customer)
        assert found["email"] == "ada@example.com"
    finally:
        _stop(proc)
