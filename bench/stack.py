"""The processes a benchmark needs, each started fresh and stopped afterwards: a Temporal dev
server (temporary SQLite file, free ports, search attributes of devstack), localstripe, a
migrated database and worker/API subprocesses. Workers and the API run as separate processes
so their memory can be read from /proc (no psutil) and so the figures include the real
client <-> server hops."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import REPO_ROOT
from devstack.__main__ import SEARCH_ATTRIBUTES
from devstack.processes import stop
from tests.fakes_stripe import LocalStripe, free_port, start_localstripe

BIN = Path(sys.executable).parent

__all__ = ["LocalStripe", "start_localstripe", "free_port", "TemporalServer", "Child",
           "rss_mb", "cpu_seconds", "wait_port", "start_smtp_sink"]


def rss_mb(pid: int) -> dict[str, float]:
    """Current and peak resident memory (MiB) of a process, from /proc/<pid>/status."""
    out = {"rss_mb": 0.0, "peak_rss_mb": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
            elif line.startswith("VmHWM:"):
                out["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open within {timeout} s")


@dataclass
class Child:
    """A subprocess whose output goes to a temporary file (never an unread pipe)."""

    name: str
    process: subprocess.Popen
    log: object = field(repr=False)

    @classmethod
    def start(cls, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Child:
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        return cls(name, proc, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory(self) -> dict[str, float]:
        return rss_mb(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def tail(self, n: int = 3000) -> str:
        self.log.seek(0)
        return self.log.read()[-n:].decode(errors="replace")

    def stop(self) -> None:
        stop(self.process, timeout=10)
        if not self.log.closed:
            self.log.close()


def start_smtp_sink() -> tuple[Child, int]:
    """An SMTP server that accepts every message and drops it (aiosmtpd's Sink handler), so
    the worker's emails cost what delivering them costs in production; with nothing listening
    each one was refused, marked failed and tried again later, every time at a cost of its
    own."""
    port = free_port()
    child = Child.start("smtp", [sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                 f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"])
    wait_port(port, 30, child.process)
    return child, port


# Optional pragmas for the dev server's own SQLite store (bench --server-pragma): its default
# is a rollback journal (no -wal file appears next to it).
SERVER_PRAGMAS: list[str] = []
# Optional dynamic config for the dev server (bench --server-config KEY=JSON).
SERVER_CONFIG: list[str] = []
# BENCH_SERVER_METRICS_PORT=9599: the dev server serves its Prometheus metrics there
# (persistence calls per operation, task counts) to see where its CPU goes.
SERVER_METRICS_PORT = os.environ.get("BENCH_SERVER_METRICS_PORT")


class TemporalServer:
    """`temporal server start-dev` on a temporary database and free ports, headless."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        extra_args = [*(extra_args or []),
                      *(a for p in SERVER_PRAGMAS for a in ("--sqlite-pragma", p)),
                      *(a for c in SERVER_CONFIG for a in ("--dynamic-config-value", c)),
                      *(["--metrics-port", SERVER_METRICS_PORT] if SERVER_METRICS_PORT else [])]
        self.dir = tempfile.TemporaryDirectory(prefix="bench-temporal-")
        self.port = free_port()
        cmd = [str(BIN / "temporal"), "server", "start-dev",
               "--db-filename", str(Path(self.dir.name) / "temporal.db"),
               "--ip", "127.0.0.1", "--port", str(self.port), "--headless",
               "--log-level", "error", *(extra_args or [])]
        for name, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        self.child = Child.start("temporal", cmd)
        try:
            wait_port(self.port, 60, self.child.process)
            self._wait_healthy(60)
        except RuntimeError as err:
            self.stop()
            raise RuntimeError(f"{err}\n{self.child.tail()}") from None

    def _wait_healthy(self, timeout: float) -> None:
        """The port opens before the frontend serves ("Frontend is not healthy yet")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run([str(BIN / "temporal"), "operator", "cluster", "health",
                                    "--address", self.address], capture_output=True, text=True)
            if probe.returncode == 0 and "SERVING" in probe.stdout:
                return
            time.sleep(0.2)
        raise RuntimeError("Temporal frontend did not become healthy")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def memory(self) -> dict[str, float]:
        return self.child.memory()

    def stop(self) -> None:
        self.child.stop()
        self.dir.cleanup()
