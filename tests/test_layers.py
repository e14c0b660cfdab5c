"""Dependencies point one way: domain <- config <- store <- services <- activities <- workflows
<- entry points. A plain AST walk over every import (lazy ones inside functions too), so a new
arrow pointing back up, or sideways between two services without a stated reason, fails here
with its file and line instead of surfacing later as an import cycle.

tests/ is not walked: tests may import any layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first; a package may import its own layer's package and any lower layer.
LAYERS: list[set[str]] = [
    {"domain"},  # pure rules: imports nothing of ours
    {"config"},  # settings and the plan catalog, validated by domain rules
    {"store"},  # engine, column types and the migration runner read the settings
    {"accounts", "ledger", "payments", "eventlog", "notifications", "webhooks",
     "invoices"},  # services
    {"activities"},
    {"workflows"},
    # Entry points; migrations too (alembic loads them, nothing imports them).
    {"api", "cli", "workers", "devstack", "bench", "migrations", "subscription_testing"},
]

# Arrows within one layer, each with its reason; anything else sideways fails (so does a cycle).
SIDEWAYS: dict[tuple[str, str], str] = {
    ("payments", "ledger"): "reconciliation grants the credits a recovered purchase paid for",
    ("notifications", "eventlog"): "reads the read model; queues messages with each event",
    ("notifications", "accounts"): "a customer's email and the organization's ids",
    ("payments", "invoices"): "a charge and its invoice are written in one transaction",
    ("notifications", "invoices"): "a payment receipt names its invoice and attaches its PDF",
    ("invoices", "accounts"): "invoices are numbered in the customer's organization",
    ("webhooks", "payments"): "Stripe customer events update the payment side's customers",
    ("bench", "workers"): "benchmarks start real workers",
    ("bench", "devstack"): "benchmarks run against the local stack",
    ("subscription_testing", "workers"): "the testing kit runs the real worker",
    ("subscription_testing", "devstack"): "the kit stops localstripe as the local stack stops "
                                          "its processes (devstack.processes.stop)",
}


def layer_of(package: str) -> int | None:
    return next((i for i, names in enumerate(LAYERS) if package in names), None)


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
    return found


def violations(root: Path) -> list[str]:
    out = []
    for names in LAYERS:
        for package in sorted(names):
            for path in sorted((root / package).rglob("*.py")):
                for line, target in imported_packages(path):
                    target_layer = layer_of(target)
                    if target == package or target_layer is None:
                        continue  # itself, or not ours (stdlib, third party)
                    source_layer = layer_of(package)
                    if target_layer < source_layer or (package, target) in SIDEWAYS:
                        continue
                    way = "sideways" if target_layer == source_layer else "up"
                    out.append(f"{path.relative_to(root)}:{line}: {package} imports "
                               f"{target} ({way})")
    return out


def test_dependencies_point_down():
    assert violations(ROOT) == []


def test_every_package_of_the_checkout_has_a_layer():
    """A new top-level package must be placed in LAYERS, or it would escape the check (the
    packages are not installed: they are the checkout's folders with an __init__.py)."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set().union(*LAYERS)


def test_a_planted_back_arrow_fails_with_its_place(tmp_path):
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "service.py").write_text(
        "from domain import credits\n\ndef f():\n    from activities.types import CreditGrant\n")
    (tmp_path / "eventlog").mkdir()
    (tmp_path / "eventlog" / "store.py").write_text("import notifications.outbox\n")
    (tmp_path / "notifications").mkdir()
    (tmp_path / "notifications" / "outbox.py").write_text("from eventlog import store\n")
    assert violations(tmp_path) == [
        "eventlog/store.py:1: eventlog imports notifications (sideways)",
        "ledger/service.py:4: ledger imports activities (up)",
    ]
