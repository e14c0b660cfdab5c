"""Child processes of the local stack: started in their own process group, stopped gently.

``stop`` is the one way this repository stops a child process (the local stack, the
benchmarks, the testing kit's localstripe, the suite's servers): SIGTERM so it can shut down,
SIGKILL if it has not exited in time, always reaped (no zombie, no ResourceWarning)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class ManagedProcess:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.cmd, self.env, self.log = name, cmd, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        stop(self.proc, timeout, group=True)


def stop(proc: subprocess.Popen | None, timeout: float = 10.0, *, group: bool = False) -> None:
    """Stop ``proc`` if it still runs (nothing if it never started or already ended); with
    ``group``, its whole process group (a child started with ``start_new_session``)."""
    if proc is None or proc.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
