"""The plan catalog (what `plan` may name) and the documentation of problem types (what the
`type` of an error answer points at)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CatalogDep, ReaderDep
from api.problems import PROBLEM_TYPES, not_found, problem_responses
from domain.plans import Plan

router = APIRouter(tags=["meta"])


class PlanList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Plan]
    has_more: bool = False


class ProblemType(BaseModel):
    type: str
    title: str
    description: str


@router.get("/v1/plans", response_model=PlanList, responses=problem_responses(401),
            summary="The plan catalog")
async def list_plans(_: ReaderDep, catalog: CatalogDep) -> PlanList:
    return PlanList(data=catalog.plans)


@router.get("/problems/{slug}", response_model=ProblemType, responses=problem_responses(404),
            summary="A problem type")
async def problem_type(slug: str) -> ProblemType:
    if slug not in PROBLEM_TYPES:
        raise not_found("problem type", slug)
    title, description = PROBLEM_TYPES[slug]
    return ProblemType(type=f"/problems/{slug}", title=title, description=description)
