"""The worker's Temporal runtime (log forwarding, metrics); connecting is workflows.connection."""

from __future__ import annotations

import logging

from temporalio.runtime import (LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime,
                                TelemetryConfig, TelemetryFilter)

from config.settings import Settings

log = logging.getLogger("workers")


def worker_runtime(settings: Settings) -> Runtime:
    """The worker's Temporal runtime: the SDK core's own log lines go through Python logging
    (so they come out in the worker's format), and its metrics (workflow/activity task
    latencies, polls, schedule-to-start, failures) are served in Prometheus format at
    ``http://<worker_metrics_address>/metrics`` unless the address is empty."""
    address = settings.worker_metrics_address

    def runtime(metrics: PrometheusConfig | None) -> Runtime:
        return Runtime(telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                                  forwarding=LogForwardingConfig(logger=logging.getLogger(
                                      "temporalio.core"))),
            metrics=metrics))

    if not address:
        return runtime(None)
    try:
        return runtime(PrometheusConfig(bind_address=address))
    except ValueError as err:  # e.g. a second local worker: the port is taken
        # Metrics are for watching the worker, not for running it: keep working without them.
        log.error("worker metrics not served at %s: %s", address, err)
        return runtime(None)
