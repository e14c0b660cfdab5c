"""Replay recorded histories in this process and exit non-zero naming those that fail:
``python -m tests.replay.replay_all [--runner sandboxed|unsandboxed] [--workflow module:Class]
[FILE ...]``.

It exists to run in a fresh interpreter, so that tests/replay/test_hashseed.py can replay under
a ``PYTHONHASHSEED`` of its choosing (the seed is fixed when the interpreter starts). Without
files it replays every history in tests/replay/histories; without ``--workflow`` it replays
against SubscriptionWorkflow; without ``--runner`` it replays them twice, in the SDK's sandbox
and unsandboxed (the worker's default, settings.workflow_sandbox).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from pathlib import Path

from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from tests.replay.test_replay import FILES, load
from workflows.connection import data_converter


RUNNERS = ("sandboxed", "unsandboxed")


async def replay(paths: list[Path], workflow: type, runner: str) -> dict[Path, str]:
    """The failing histories among ``paths``, with their failure."""
    replayer = Replayer(workflows=[workflow], data_converter=data_converter(),
                        **({"workflow_runner": UnsandboxedWorkflowRunner()}
                           if runner == "unsandboxed" else {}))
    loaded = [(path, load(path)) for path in paths]

    async def histories():
        for _, history in loaded:
            yield history

    failures, done = {}, iter(loaded)
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:  # one at a time, in order
            path, history = next(done)
            assert result.history is history
            if result.replay_failure is not None:
                failures[path] = repr(result.replay_failure)
    return failures


def _workflow(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.replay.replay_all")
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--runner", choices=RUNNERS, action="append")
    parser.add_argument("--workflow", default="workflows.subscription:SubscriptionWorkflow")
    args = parser.parse_args(argv)
    paths, workflow, failed = args.files or FILES, _workflow(args.workflow), 0
    for runner in args.runner or RUNNERS:
        failures = asyncio.run(replay(paths, workflow, runner))
        for path, failure in failures.items():
            print(f"{runner}: {path}: {failure}", file=sys.stderr)
        print(f"{runner}: replayed {len(paths)} histories, {len(failures)} failed",
              file=sys.stderr)
        failed += len(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    # No interpreter finalization: the SDK's Rust threads can abort a finishing process with
    # SIGABRT ("PyGILState_Release ... finalizing", temporalio/sdk-python#300), as cli/main.py
    # _exit says; the results are printed and flushed by then.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
