"""The plan catalog: a YAML file of plans, validated into domain Plan values."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, model_validator

from domain.plans import Plan


class PlanCatalog(BaseModel):
    plans: list[Plan]

    @model_validator(mode="after")
    def _unique_ids(self) -> PlanCatalog:
        ids = [p.id for p in self.plans]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate plan ids: {', '.join(dupes)}")
        return self

    def get(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)


def load_catalog(path: Path) -> PlanCatalog:
    with open(path, encoding="utf-8") as fh:
        return PlanCatalog.model_validate(yaml.safe_load(fh))
