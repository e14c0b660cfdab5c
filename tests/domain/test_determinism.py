"""The determinism guard (tests/domain/determinism.py): domain/ holds nothing that could make a
replay differ from the first run, and the scan does catch what it claims to, in planted
sources and in a planted copy of domain/ itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import domain
from tests.domain.determinism import (CONCURRENCY, DOMAIN, DYNAMIC, ENVIRONMENT, HASH, IMPORT,
                                      IO, LAYERING, MODULE_STATE, RANDOMNESS, SET_ORDER, UUID,
                                      WALL_CLOCK, check_source, modules, scan_package)


def test_domain_has_no_nondeterministic_code():
    findings = scan_package()
    assert not findings, "\n".join(map(str, findings))


def test_the_scan_walks_the_imported_domain_package():
    assert DOMAIN == Path(domain.__file__).resolve().parent
    names = {m.name for m in modules()}
    assert {"domain", "domain.lifecycle", "domain.model", "domain.credits"} <= names
    assert len(names) == len(list(DOMAIN.rglob("*.py")))


PLANTED = [
    ("from datetime import datetime\n\ndef f():\n    return datetime.now()", 4, WALL_CLOCK),
    ("from datetime import datetime as dt\nx = dt.utcnow()", 2, WALL_CLOCK),
    ("import datetime\nx = datetime.date.today()", 2, WALL_CLOCK),
    ("from datetime import datetime\nclock = datetime.now", 2, WALL_CLOCK),
    ("x = getattr(d, 'now')()", 1, WALL_CLOCK),
    ("import time\nx = time.monotonic()", 1, WALL_CLOCK),
    ("from time import perf_counter", 1, WALL_CLOCK),
    ("import random", 1, RANDOMNESS),
    ("from secrets import token_hex", 1, RANDOMNESS),
    ("from numpy import random", 1, RANDOMNESS),
    ("import uuid\nx = uuid.uuid4()", 1, UUID),
    ("import os\nx = os.environ['SUBS_X']", 1, ENVIRONMENT),
    ("from os import getenv", 1, ENVIRONMENT),
    ("import sys\nargs = sys.argv", 1, ENVIRONMENT),
    ("x = d.astimezone()", 1, ENVIRONMENT),
    ("x = datetime.fromtimestamp(0)", 1, ENVIRONMENT),
    ("def f():\n    return open('rules.json').read()", 2, IO),
    ("print('renewed')", 1, IO),
    ("from pathlib import Path", 1, IO),
    ("import socket", 1, IO),
    ("import subprocess", 1, IO),
    ("from sqlmodel import Session", 1, IO),
    ("import stripe", 1, IO),
    ("from temporalio import workflow", 1, IO),
    ("import httpx", 1, IO),
    ("import threading", 1, CONCURRENCY),
    ("import asyncio", 1, CONCURRENCY),
    ("async def f():\n    pass", 1, CONCURRENCY),
    ("_CACHE = None\n\ndef f():\n    global _CACHE", 4, MODULE_STATE),
    ("x = hash('sub_1')", 1, HASH),
    ("x = id(object())", 1, HASH),
    ("x = v.__hash__()", 1, HASH),
    ("__import__('os')", 1, DYNAMIC),
    ("import json", 1, IMPORT),
    ("from payments.stripe_client import charge", 1, LAYERING),
    ("from config.settings import Settings", 1, LAYERING),
    ("for x in {1, 2}:\n    pass", 1, SET_ORDER),
    ("def f(a):\n    for x in set(a):\n        pass", 2, SET_ORDER),
    ("def f(a):\n    return [x for x in frozenset(a)]", 2, SET_ORDER),
    ("def f(a):\n    return {x: 1 for x in set(a)}", 2, SET_ORDER),
    ("def f(a):\n    return list(set(a))", 2, SET_ORDER),
    ("def f(a):\n    return tuple(set(a))", 2, SET_ORDER),
    ("def f(a):\n    s = set(a)\n    return next(iter(s))", 3, SET_ORDER),
    ("S = frozenset({'a', 'b'})\n\ndef f():\n    return ','.join(S)", 4, SET_ORDER),
    ("def f(s: frozenset[str] | None):\n    return [*s]", 2, SET_ORDER),
    ("def f(s: set[str]):\n    return s.pop()", 2, SET_ORDER),
    ("def f(a, b: set[str]):\n    first, second = a | b", 2, SET_ORDER),
    ("def f(a):\n    return sorted(set(a), key=len)", 2, SET_ORDER),
    ("def f(a):\n    return max((x for x in set(a)), key=len)", 2, SET_ORDER),
    ("def f(a):\n    return f'{set(a)}'", 2, SET_ORDER),
    ("class Lot:\n    tags: frozenset[str]\n\ndef f(lot):\n    return list(lot.tags)", 5,
     SET_ORDER),
]


@pytest.mark.parametrize(("source", "line", "rule"), PLANTED,
                         ids=[s.splitlines()[-1].strip()[:40] for s, _, _ in PLANTED])
def test_the_scan_reports_a_planted_violation(source: str, line: int, rule: str):
    found = [(f.line, f.rule) for f in check_source(source)]
    assert (line, rule) in found, found


CLEAN = [
    "from datetime import UTC, date, datetime, time, timedelta\n\n"
    "def f(now: datetime) -> date:\n    return (now + timedelta(days=1)).astimezone(UTC).date()",
    "from datetime import time\nMIDNIGHT = time(0, 0)",
    "ENDED = frozenset({'canceled'})\n\ndef f(s):\n    return s in ENDED",
    "def f(a, b):\n    return sorted(set(a) | set(b))",
    "def f(a):\n    return tuple(sorted({x.name for x in a}))",
    "def f(a):\n    return {x.upper() for x in set(a)}",
    "def f(a):\n    return any(x > 1 for x in set(a)) and len(set(a)) == 2",
    "def f(a):\n    return min(set(a))",
    "def f(a: set[int], b: set[int]):\n    return a <= b and a.isdisjoint(b)",
    "def f(items: dict):\n    return [k for k in items]",
    "def f(id, hash):\n    return id, hash",
    "class Sub:\n    id: str\n\n    def key(self):\n        return f'{self.id}:renewal'",
    "from pydantic import BaseModel, Field\nfrom typing import Literal",
    "from .model import Status\nfrom domain.periods import boundary",
]


@pytest.mark.parametrize("source", CLEAN, ids=[s.splitlines()[-1].strip()[:40] for s in CLEAN])
def test_the_scan_leaves_pure_code_alone(source: str):
    assert check_source(source) == []


@pytest.fixture
def domain_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DOMAIN, tmp_path / "domain",
                                ignore=shutil.ignore_patterns("__pycache__")))


def test_a_datetime_now_planted_in_domain_fails_the_scan(domain_copy: Path):
    lifecycle = domain_copy / "lifecycle.py"
    text = lifecycle.read_text()
    lifecycle.write_text(text + "\n\ndef _today_or(now):\n    return now or datetime.now()\n")
    line = len(text.splitlines()) + 4
    assert [str(f) for f in scan_package(domain_copy)] == [
        f"domain/lifecycle.py:{line}: wall clock: datetime.now reads the clock; "
        "take `now` as an argument"]


def test_a_new_module_is_scanned_with_what_the_others_export(domain_copy: Path):
    """A module added later (here in a new subpackage) is walked, and a set constant imported
    from another domain module is known to be a set."""
    (domain_copy / "rules").mkdir()
    (domain_copy / "rules" / "__init__.py").write_text("")
    (domain_copy / "rules" / "ended.py").write_text(
        "from domain.model import ENDED\nfrom .. import model\n\n"
        "def first_ended():\n    return [s for s in ENDED][0], list(model.WITH_ACCESS)\n")
    found = [(f.path, f.line, f.rule) for f in scan_package(domain_copy)]
    assert found == [("domain/rules/ended.py", 5, SET_ORDER)] * 2
