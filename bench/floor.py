"""The floor for an update round trip: a bare workflow whose update sets one field and answers
(no validator, no rules, no activity, no events). ``set_indexed`` does the same and upserts one
search attribute, as every request that changes a subscription's status, cancel date or plan
must (operators filter on them): what that one visibility write costs on the same server. ``python -m bench.floor`` runs its worker,
built like the project's (bench/worker.py), so `bench api` can compare the project's update
with the cheapest update Temporal can do on the same server, in the same run."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contract import STATUS

WORKFLOW_TYPE = "BenchFloorUpdate"
UPDATE = "set"
UPDATE_INDEXED = "set_indexed"


@workflow.defn(name=WORKFLOW_TYPE)
class FloorWorkflow:
    def __init__(self) -> None:
        self.value = ""

    @workflow.run
    async def run(self) -> None:
        # Never ends by itself: the benchmark's dev server is discarded with it.
        await workflow.wait_condition(lambda: False)

    @workflow.update(name=UPDATE)
    def set_value(self, value: str) -> str:
        self.value = value
        return value

    @workflow.update(name=UPDATE_INDEXED)
    def set_indexed(self, value: str) -> str:
        self.value = value
        workflow.upsert_search_attributes([STATUS.value_set(value)])
        return value


if __name__ == "__main__":
    from bench.worker import serve

    asyncio.run(serve([FloorWorkflow]))
