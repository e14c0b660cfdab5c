"""Stopping a child process a test started: devstack.processes.stop, the repository's one
way (SIGTERM, then SIGKILL if it does not exit in time, always reaped)."""

from devstack.processes import stop  # noqa: F401
