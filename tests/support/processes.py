"""Stopping a child process a test started: politely first (SIGTERM, so it can shut down),
then SIGKILL if it does not exit in time, always reaped (no zombie, no ResourceWarning)."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop ``proc`` if it still runs; nothing if it never started or already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
