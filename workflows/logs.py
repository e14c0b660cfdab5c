"""Structured logs of the worker and the API: one JSON object per line, subscription and period.

Log shippers index fields, not sentences: an operator asks "everything for sub_123 in period
2026-05" and gets the charge, the credit grant and the events of that renewal. Fields come from
``extra=`` (``subscription_id``, ``period`` and anything else the caller adds) and from the
context Temporal's loggers attach (``temporal_activity`` / ``temporal_workflow``); the
subscription id is derived from the workflow id (``subscription-<id>``) when not given.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

from workflows import contract

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_TEMPORAL = {
    "temporal_activity": {"activity_type": "activity", "attempt": "attempt",
                          "workflow_id": "workflow_id", "workflow_run_id": "run_id",
                          "task_queue": "task_queue"},
    "temporal_workflow": {"workflow_id": "workflow_id", "run_id": "run_id",
                          "workflow_type": "workflow_type", "task_queue": "task_queue"},
}
_PREFIX = contract.workflow_id("")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _TEMPORAL and isinstance(value, dict):
                for src, dst in _TEMPORAL[key].items():
                    if src in value:
                        out.setdefault(dst, value[src])
            elif key not in _STANDARD:
                out[key] = value
        workflow_id = out.get("workflow_id")
        if ("subscription_id" not in out and isinstance(workflow_id, str)
                and workflow_id.startswith(_PREFIX)):
            out["subscription_id"] = workflow_id[len(_PREFIX):]
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, fmt: str = "json") -> None:
    """Set up the root logger of the worker process (JSON or plain text)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        # The context goes into fields; do not repeat it inside every message.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
