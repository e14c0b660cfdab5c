"""`make dev`: the whole local stack in one command, stopped cleanly with Ctrl-C.

Starts the Temporal dev server with its Web UI (persistent SQLite file, search attributes
registered), localstripe, applies migrations, then the worker and the HTTP API. The local stack
uses short dunning delays so a person sees retries, renewals and cancellations within a minute.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from config.settings import REPO_ROOT
from devstack.processes import ManagedProcess, wait_for_port
from workflows import contract

VAR = REPO_ROOT / "var"
BIN = Path(sys.executable).parent

# Name -> the kind the temporal CLI takes, from the one list in workflows/contract.py.
SEARCH_ATTRIBUTES = contract.SEARCH_ATTRIBUTE_KINDS

LOCAL_ENV = {
    "SUBS_DATABASE_URL": f"sqlite:///{VAR / 'subscriptions.db'}",
    "SUBS_TEMPORAL__ADDRESS": "127.0.0.1:7233",
    "SUBS_STRIPE__API_BASE": "http://127.0.0.1:8420",
    # `subs demo --scenario dunning`: past_due at the first renewal (20 s), canceled after
    # the last of three retries 5 s apart, about 35 s after the start.
    "SUBS_DUNNING__RETRY_DELAYS": '["PT5S","PT5S","PT5S"]',
    "SUBS_DUNNING__GRACE_PERIOD": "PT10S",
    # The demo plan renews every 20 s: send the ending notice 10 s before a scheduled end.
    "SUBS_NOTIFICATIONS__ENDING_NOTICE": "PT10S",
    "SUBS_NOTIFICATIONS__BACKOFF_INITIAL": "PT2S",
    # Local webhook receivers (http://127.0.0.1:...) are allowed here only.
    "SUBS_NOTIFICATIONS__WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
}


def temporal_command() -> list[str]:
    cmd = [str(BIN / "temporal"), "server", "start-dev", "--db-filename",
           str(VAR / "temporal.db"), "--ip", "127.0.0.1", "--port", "7233",
           "--ui-port", "8233", "--log-level", "warn"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    VAR.mkdir(exist_ok=True)
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in LOCAL_ENV.items()}}
    busy = [p for p in (7233, 8233, 8420, 8000, 1025) if not port_free(p)]
    if busy:
        print(f"ports already in use: {busy}; stop what holds them first", file=sys.stderr)
        return 1
    # Explicit handlers: a shell that starts us in the background ignores SIGINT, and Python
    # then would not turn it into KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    procs = [
        ManagedProcess("temporal", temporal_command(), env, VAR / "temporal.log"),
        # Its store in var/, not the /tmp file every localstripe on the machine shares.
        ManagedProcess("localstripe", [sys.executable, "-m", "devstack.localstripe",
                                       str(VAR / "localstripe.pickle"), "8420"], env,
                       VAR / "localstripe.log"),
        # D14: emails the worker sends are printed here (SUBS_NOTIFICATIONS__SMTP_PORT=1025).
        ManagedProcess("smtp", [sys.executable, "-u", "-m", "aiosmtpd", "-n", "-l",
                                "127.0.0.1:1025", "-c", "aiosmtpd.handlers.Debugging"], env,
                       VAR / "smtp.log"),
    ]
    try:
        for p in procs:
            p.start()
        wait_for_port(7233, 60)
        wait_for_port(8420, 30)
        wait_for_port(1025, 30)
        subprocess.run([sys.executable, "-m", "store.migrate_cli"], env=env, check=True,
                       cwd=REPO_ROOT)
        for name, module in (("worker", "workers.main"), ("api", "api")):
            proc = ManagedProcess(name, [sys.executable, "-m", module], env, VAR / f"{name}.log")
            proc.start()
            procs.append(proc)
        wait_for_port(8000, 60)
        print(
            "\nLocal stack is up (logs in var/*.log):\n"
            "  Temporal Web UI   http://127.0.0.1:8233\n"
            "  HTTP API          http://127.0.0.1:8000/docs\n"
            "  Temporal gRPC     127.0.0.1:7233\n"
            "  fake Stripe       http://127.0.0.1:8420\n"
            "  SMTP (emails)     127.0.0.1:1025, printed to var/smtp.log\n"
            "  database          " + env["SUBS_DATABASE_URL"] + "\n"
            "Try: .venv/bin/subs demo   (creates a customer and a demo subscription)\n"
            "Ctrl-C stops everything.\n", flush=True)
        while all(p.alive() for p in procs):
            time.sleep(0.5)
        dead = [p.name for p in procs if not p.alive()]
        print(f"stopped unexpectedly: {dead}; see var/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
