"""Heartbeats for synchronous activities, so a dead worker's work moves on in seconds.

Without heartbeats the server learns that a worker died (SIGKILL, OOM, a lost host) only when
the attempt's start-to-close timeout expires, and every renewal in flight on that worker waits
it out. A Stripe activity runs in the worker's thread pool and spends its time blocked in the
SDK or asleep at the rate limiter, so it cannot heartbeat itself: :func:`heartbeating` starts a
thread that heartbeats for it every ``INTERVAL`` seconds until it returns or raises. The
workflow sets a heartbeat timeout on these activities (workflows.subscription); a worker that
stops heartbeating has its attempt retried elsewhere after that timeout.

The pump says "this worker's process is alive", not "this call is making progress": a call
stuck in a live worker is bounded by Stripe's request timeout and the activity's start-to-close
timeout instead. The SDK sends at most one heartbeat per 0.8 x heartbeat timeout, so beating
every second costs nothing on the wire. Time-skipping tests stay sound: the test server does not
skip time while an activity runs (``env.sleep`` waits for it first; checked by hand), so a
heartbeat timeout never fires in skipped time.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from temporalio import activity

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds; well under any heartbeat timeout the workflow sets

F = TypeVar("F", bound=Callable)


@contextmanager
def pump(interval: float = INTERVAL) -> Iterator[None]:
    """Heartbeat the current activity from a background thread while the block runs."""
    if not activity.in_activity():
        yield  # called directly (a script, a unit test): nobody to heartbeat to
        return
    context = contextvars.copy_context()  # the activity's context, for activity.heartbeat
    done = threading.Event()

    def beat() -> None:
        while not done.wait(interval):
            try:
                context.run(activity.heartbeat)
            except RuntimeError as err:  # the worker's event loop is gone: it is shutting down
                log.info("heartbeat stopped: %s", err)
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{activity.info().activity_id}",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def heartbeating(fn: F) -> F:
    """Decorate a synchronous activity so it heartbeats while it runs (see :func:`pump`)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with pump():
            return fn(*args, **kwargs)
    wrapper.heartbeats = True  # type: ignore[attr-defined] - checked against the workflow
    return wrapper  # type: ignore[return-value]
