"""The determinism guard for domain/: an AST scan for code whose result could differ between
the first run of a workflow and its replay.

The workflow imports ``domain`` through the sandbox's pass-through and the worker runs workflow
code unsandboxed by default (``settings.workflow_sandbox``), so nothing stops a rule from reading
the clock at run time; a rule that did would replay differently years later. The scan reports,
as ``file:line: rule: detail``:

- wall clock: any ``.now``, ``.utcnow`` or ``.today`` (``datetime.now()``, ``date.today()``,
  ``dt.now`` after ``from datetime import datetime as dt``...), whatever the receiver;
  ``import time``. The rules take ``now`` as an argument (the shell passes ``workflow.now()``).
- environment: ``os``, ``sys``, ``platform``, settings; ``astimezone()`` without a zone and
  ``fromtimestamp()`` without ``tz`` (the machine's local time zone).
- randomness (``random``, ``secrets``, ``numpy.random``), ``uuid``, I/O (``open``, ``print``,
  ``input``, file, network, database, Stripe and Temporal modules), concurrency (threading,
  asyncio, ``async def``), ``global`` (module state shared by every workflow in a worker),
  ``hash()``, ``id()`` and ``__hash__`` (they vary with ``PYTHONHASHSEED`` or memory layout),
  dynamic code (``eval``, ``exec``, ``__import__``).
- import: anything else outside the allow-list below. An import is the surest check: domain/
  may import only these pure standard-library modules, pydantic and itself.
- set order: a set (literal, comprehension, ``set()``/``frozenset()``, set operators, a name or
  field annotated or assigned as one, a set constant imported from another domain module) used
  where its iteration order leaks: ``for``, a list/dict/generator comprehension, ``list``,
  ``tuple``, ``iter``/``next``, ``enumerate``, ``zip``, ``map``, ``filter``, ``sum``, ``dict``,
  ``str``, ``join``, ``extend``, ``dict.fromkeys``, ``*unpacking``, ``a, b = s``, ``s.pop()``,
  ``yield from``, f-strings; ``sorted``/``min``/``max`` with ``key=`` (ties keep the set's
  order: sort the set first). Fine: ``sorted(s)``, ``len``, ``any``/``all``, ``set``/
  ``frozenset``, membership, set algebra, a set comprehension over a set.

``print`` counts as I/O: the rules are pure, and logging belongs to the shell, where
``workflow.logger`` stays quiet during replay. The scan is syntactic and over-approximates
(a name bound to a set anywhere in a scope is a set throughout it); it cannot see a set passed
in through an ``Iterable`` parameter, which is why the recorded histories also replay under
several hash seeds (tests/replay/test_hashseed.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"

ALLOWED_MODULES = frozenset({
    "__future__", "abc", "annotated_types", "bisect", "calendar", "collections", "copy",
    "dataclasses", "datetime", "enum", "functools", "heapq", "itertools", "math", "numbers",
    "operator", "pydantic", "re", "string", "types", "typing", "typing_extensions", "domain",
})

WALL_CLOCK, RANDOMNESS, UUID, ENVIRONMENT, IO = ("wall clock", "randomness", "uuid",
                                                 "environment", "I/O")
CONCURRENCY, MODULE_STATE, HASH, DYNAMIC = "concurrency", "module state", "hash", "dynamic code"
IMPORT, LAYERING, SET_ORDER = "import", "layering", "set order"

# Modules outside the allow-list that break a specific rule, for a clearer message (longest
# dotted prefix wins); any other module outside the allow-list is reported as IMPORT.
MODULE_RULES = {
    "time": WALL_CLOCK, "random": RANDOMNESS, "secrets": RANDOMNESS, "numpy.random": RANDOMNESS,
    "uuid": UUID,
    **dict.fromkeys(("os", "sys", "platform", "getpass", "locale", "sysconfig",
                     "pydantic_settings", "dotenv"), ENVIRONMENT),
    **dict.fromkeys(("io", "pathlib", "shutil", "tempfile", "glob", "fileinput", "mmap",
                     "socket", "ssl", "select", "selectors", "subprocess", "urllib", "http",
                     "smtplib", "ftplib", "requests", "httpx", "aiohttp", "sqlite3",
                     "sqlalchemy", "sqlmodel", "psycopg", "psycopg2", "asyncpg", "alembic",
                     "stripe", "temporalio", "logging", "pickle", "shelve", "zoneinfo"), IO),
    **dict.fromkeys(("threading", "_thread", "asyncio", "concurrent", "multiprocessing",
                     "sched", "signal", "contextvars"), CONCURRENCY),
    "importlib": DYNAMIC,
    # The rest of the project sits above domain (domain <- services <- activities <- ...).
    **dict.fromkeys(("accounts", "activities", "api", "bench", "cli", "config", "eventlog",
                     "ledger", "migrations", "notifications", "payments", "store", "tests",
                     "webhooks", "workers", "workflows"), LAYERING),
}

CLOCK_ATTRS = frozenset({"now", "utcnow", "today"})
BUILTIN_RULES = {
    "open": IO, "print": IO, "input": IO, "breakpoint": IO,
    "hash": HASH, "id": HASH,
    "eval": DYNAMIC, "exec": DYNAMIC, "compile": DYNAMIC, "__import__": DYNAMIC,
}

SET_TYPES = frozenset({"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "MutableSet"})
SET_RESULT_METHODS = frozenset({"union", "intersection", "difference",
                                "symmetric_difference", "copy"})
SET_OPS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
# Builtins whose result depends on the order they iterate their argument in.
ORDER_SENSITIVE_CALLS = frozenset({"list", "tuple", "iter", "next", "enumerate", "zip", "map",
                                   "filter", "sum", "dict", "str", "repr", "ascii", "format",
                                   "reversed", "print"})
ORDER_SENSITIVE_METHODS = frozenset({"join", "extend", "fromkeys"})
# Builtins that may consume a set (or a comprehension over one) whatever its order; those in
# ORDERING_CALLS only without key=.
ORDER_FREE_CALLS = frozenset({"sorted", "min", "max", "len", "any", "all", "set", "frozenset",
                              "bool"})
ORDERING_CALLS = frozenset({"sorted", "min", "max"})

SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class Module:
    path: Path
    name: str  # dotted
    package: str  # what a relative import starts from: the module's package, or itself

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(), filename=str(self.path))


def modules(root: Path = DOMAIN) -> list[Module]:
    """Every module of the package at ``root``, walked, so a new module is covered."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            found.append(Module(path, ".".join(parts[:-1]), ".".join(parts[:-1])))
        else:
            found.append(Module(path, ".".join(parts), ".".join(parts[:-1])))
    return found


def scan_package(root: Path = DOMAIN) -> list[Finding]:
    """Findings for every module under ``root``; paths are shown as ``<root name>/...``."""
    parsed = [(module, module.tree) for module in modules(root)]
    facts = _PackageFacts.of([(m.name, m.package, tree) for m, tree in parsed])
    findings = []
    for module, tree in parsed:
        shown = f"{root.name}/{module.path.relative_to(root).as_posix()}"
        findings += _Checker(tree, module.package, shown, facts).run()
    return findings


def check_source(source: str, module: str = "domain.planted",
                 path: str = "domain/planted.py") -> list[Finding]:
    """Findings for one module given as text (how the tests plant violations)."""
    tree, package = ast.parse(source), module.rsplit(".", 1)[0]
    return _Checker(tree, package, path, _PackageFacts.of([(module, package, tree)])).run()


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return base and f"{base}.{node.attr}"
    return None


def _is_set_annotation(node: ast.expr | None) -> bool:
    """The outermost type of an annotation is a set (``frozenset[str] | None`` is)."""
    if node is None:
        return False
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _is_set_annotation(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_set_annotation(node.left) or _is_set_annotation(node.right)
    if isinstance(node, ast.Subscript):
        outer = (_dotted(node.value) or "").rsplit(".", 1)[-1]
        if outer in {"Optional", "Annotated", "Union"}:
            inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return any(_is_set_annotation(e) for e in inner[:1 if outer == "Annotated" else None])
        return outer in SET_TYPES
    return (_dotted(node) or "").rsplit(".", 1)[-1] in SET_TYPES


def _resolve_from(package: str, node: ast.ImportFrom) -> str:
    """The absolute module of ``from <node.module> import ...`` written in ``package``."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[:len(parts) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


class _Scope:
    """The names one scope binds, and which of them hold a set."""

    def __init__(self, node: ast.AST, parent: _Scope | None):
        self.node, self.parent = node, parent
        self.bound: set[str] = set()
        self.sets: set[str] = set()
        self.modules: dict[str, str] = {}  # alias -> module, for attribute lookups


def _direct_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope's own body, not those of the scopes nested in it (their names,
    decorators and defaults do belong to it)."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            todo += [*node.decorator_list, *getattr(node, "bases", ()),
                     *(d for d in (node.args.defaults + node.args.kw_defaults
                                   if not isinstance(node, ast.ClassDef) else ()) if d)]
        elif isinstance(node, ast.Lambda):
            todo += [d for d in node.args.defaults + node.args.kw_defaults if d]
        else:
            todo += ast.iter_child_nodes(node)


@dataclass
class _PackageFacts:
    """What one module needs to know about the others: their module-level set constants and
    the attribute names declared as sets in their classes."""

    set_constants: dict[str, set[str]]
    set_attrs: set[str]

    @classmethod
    def of(cls, trees: list[tuple[str, str, ast.Module]]) -> _PackageFacts:
        facts = cls({}, set())
        for _, _, tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    facts.set_attrs |= {s.target.id for s in node.body
                                        if isinstance(s, ast.AnnAssign)
                                        and isinstance(s.target, ast.Name)
                                        and _is_set_annotation(s.annotation)}
        # Constants may be defined from each other's: a few rounds reach the fixpoint.
        for _ in range(3):
            for name, package, tree in trees:
                scope = _Scope(tree, None)
                _Checker.bind(scope, package, facts)
                facts.set_constants[name] = scope.sets
        for _, _, tree in trees:  # self.<attr> = set() in methods
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and _Checker.literal_set(node.value):
                    facts.set_attrs |= {t.attr for t in node.targets
                                        if isinstance(t, ast.Attribute)}
        return facts


class _Checker:
    def __init__(self, tree: ast.Module, package: str, path: str, facts: _PackageFacts):
        self.tree, self.package, self.path, self.facts = tree, package, path, facts
        self.findings: list[Finding] = []
        self.parents = {child: node for node in ast.walk(tree)
                        for child in ast.iter_child_nodes(node)}
        self.scopes: dict[ast.AST, _Scope] = {}

    def run(self) -> list[Finding]:
        self._build_scopes(self.tree, None)
        for node in ast.walk(self.tree):
            self._check(node)
        return sorted(set(self.findings), key=lambda f: (f.line, f.rule, f.detail))

    def report(self, node: ast.AST, rule: str, detail: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), rule, detail))

    # -- scopes --------------------------------------------------------------------------
    def _build_scopes(self, node: ast.AST, parent: _Scope | None) -> None:
        scope = _Scope(node, parent)
        self.scopes[node] = scope
        self.bind(scope, self.package, self.facts, self)
        for child in _direct_nodes(node):
            if isinstance(child, SCOPES):
                self._build_scopes(child, scope)

    @staticmethod
    def bind(scope: _Scope, package: str, facts: _PackageFacts,
             checker: _Checker | None = None) -> None:
        node = scope.node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                        *filter(None, (args.vararg, args.kwarg))]:
                scope.bound.add(arg.arg)
                if _is_set_annotation(arg.annotation):
                    scope.sets.add(arg.arg)
        assigned: list[tuple[str, ast.expr]] = []
        for child in _direct_nodes(node):
            if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
                scope.bound.add(child.id)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                scope.bound.add(child.name)
            elif isinstance(child, ast.ExceptHandler) and child.name:
                scope.bound.add(child.name)
            elif isinstance(child, (ast.MatchAs, ast.MatchStar)) and child.name:
                scope.bound.add(child.name)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    local = alias.asname or alias.name.split(".")[0]
                    scope.bound.add(local)
                    scope.modules[local] = alias.name if alias.asname else local
            elif isinstance(child, ast.ImportFrom):
                source = _resolve_from(package, child)
                for alias in child.names:
                    local = alias.asname or alias.name
                    scope.bound.add(local)
                    scope.modules[local] = f"{source}.{alias.name}"
                    if alias.name in facts.set_constants.get(source, ()):
                        scope.sets.add(local)
            if isinstance(child, ast.Assign):
                assigned += [(t.id, child.value) for t in child.targets if isinstance(t, ast.Name)]
            elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
                if _is_set_annotation(child.annotation):
                    scope.sets.add(child.target.id)
                elif child.value is not None:
                    assigned.append((child.target.id, child.value))
        for _ in range(3):  # a = {...}; b = a | {...}
            for name, value in assigned:
                known = (checker.is_set(value, scope) if checker
                         else _Checker.literal_set(value, scope.sets))
                if known:
                    scope.sets.add(name)

    def _enclosing(self, node: ast.AST) -> _Scope:
        """The scope whose body holds ``node`` (a def's decorators and defaults count as the
        enclosing scope's)."""
        child, parent = node, self.parents.get(node)
        while parent is not None:
            if isinstance(parent, SCOPES):
                if isinstance(parent, ast.Module) or self._in_own_body(parent, child):
                    return self.scopes[parent]
            child, parent = parent, self.parents.get(parent)
        return self.scopes[self.tree]

    @staticmethod
    def _in_own_body(scope: ast.AST, child: ast.AST) -> bool:
        if isinstance(scope, ast.Lambda):
            return child is scope.body
        if isinstance(scope, ast.ClassDef):
            return child in scope.body
        return child in scope.body  # not the arguments: defaults and annotations are outside

    def _lookup(self, name: str, scope: _Scope) -> _Scope | None:
        """The scope that binds ``name`` as seen from ``scope`` (None: a builtin)."""
        current: _Scope | None = scope
        while current is not None:
            # Class bodies are not visible from the functions nested in them.
            if name in current.bound and (current is scope
                                          or not isinstance(current.node, ast.ClassDef)):
                return current
            current = current.parent
        return None

    def _builtin(self, node: ast.expr, names: frozenset[str] | dict) -> str | None:
        if isinstance(node, ast.Name) and node.id in names \
                and self._lookup(node.id, self._enclosing(node)) is None:
            return node.id
        return None

    # -- sets ----------------------------------------------------------------------------
    @staticmethod
    def literal_set(node: ast.expr, names: set[str] | frozenset[str] = frozenset()) -> bool:
        """Set-valued without name resolution (used before scopes exist)."""
        if isinstance(node, (ast.Set, ast.SetComp)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id in {"set", "frozenset"}
        if isinstance(node, ast.BinOp) and isinstance(node.op, SET_OPS):
            return any(_Checker.literal_set(side, names) for side in (node.left, node.right))
        return isinstance(node, ast.Name) and node.id in names

    def is_set(self, node: ast.expr, scope: _Scope | None = None) -> bool:
        scope = scope or self._enclosing(node)
        if isinstance(node, (ast.Set, ast.SetComp)):
            return True
        if isinstance(node, ast.Call):
            if self._builtin(node.func, {"set", "frozenset"}):
                return True
            return isinstance(node.func, ast.Attribute) \
                and node.func.attr in SET_RESULT_METHODS and self.is_set(node.func.value, scope)
        if isinstance(node, ast.BinOp) and isinstance(node.op, SET_OPS):
            return self.is_set(node.left, scope) or self.is_set(node.right, scope)
        if isinstance(node, ast.IfExp):
            return self.is_set(node.body, scope) or self.is_set(node.orelse, scope)
        if isinstance(node, ast.Name):
            owner = self._lookup(node.id, scope)
            return owner is not None and node.id in owner.sets
        if isinstance(node, ast.Attribute):
            if node.attr in self.facts.set_attrs:
                return True
            base = _dotted(node.value)
            owner = base and self._lookup(base.split(".")[0], scope)
            if owner and base.split(".")[0] in owner.modules:
                module = ".".join([owner.modules[base.split(".")[0]], *base.split(".")[1:]])
                return node.attr in self.facts.set_constants.get(module, ())
        return False

    def _set_sink(self, node: ast.expr) -> str | None:
        """How the set ``node`` leaks its iteration order, if it does."""
        parent = self.parents.get(node)
        if isinstance(parent, (ast.For, ast.AsyncFor)) and node is parent.iter:
            return "iterates a set"
        if isinstance(parent, ast.comprehension) and node is parent.iter:
            comp = self.parents[parent]
            if isinstance(comp, ast.SetComp) or self._order_free_consumer(comp):
                return None
            return "a comprehension over a set"
        if isinstance(parent, ast.Call) and node in parent.args:
            called = self._builtin(parent.func, ORDER_SENSITIVE_CALLS)
            if called:
                return f"{called}() of a set"
            if isinstance(parent.func, ast.Attribute) \
                    and parent.func.attr in ORDER_SENSITIVE_METHODS:
                return f".{parent.func.attr}() of a set"
            called = self._builtin(parent.func, ORDERING_CALLS)
            if called and any(k.arg == "key" for k in parent.keywords):
                return f"{called}(key=...) of a set, whose ties keep its order"
        if isinstance(parent, ast.Starred):
            return "unpacks a set"
        if isinstance(parent, ast.Attribute) and parent.attr == "pop":
            return "pops from a set"
        if isinstance(parent, ast.Assign) and node is parent.value \
                and any(isinstance(t, (ast.Tuple, ast.List)) for t in parent.targets):
            return "unpacks a set"
        if isinstance(parent, ast.YieldFrom):
            return "yields from a set"
        if isinstance(parent, ast.FormattedValue):
            return "formats a set"
        return None

    def _order_free_consumer(self, comp: ast.AST) -> bool:
        parent = self.parents.get(comp)
        if not (isinstance(parent, ast.Call) and comp in parent.args):
            return False
        called = self._builtin(parent.func, ORDER_FREE_CALLS)
        return bool(called) and not (called in ORDERING_CALLS
                                     and any(k.arg == "key" for k in parent.keywords))

    # -- rules ---------------------------------------------------------------------------
    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._check_import(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve_from(self.package, node)
            for alias in node.names:
                self._check_import(node, f"{source}.{alias.name}", source)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            self._check_attribute(node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            builtin = self._builtin(node, BUILTIN_RULES)
            if builtin:
                self.report(node, BUILTIN_RULES[builtin], f"{builtin}()")
        elif isinstance(node, ast.Call):
            self._check_call(node)
        elif isinstance(node, ast.Global):
            self.report(node, MODULE_STATE, f"global {', '.join(node.names)}: module state is "
                        "shared by every workflow in a worker process")
        elif isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)):
            self.report(node, CONCURRENCY, "async code: the rules are synchronous and pure")
        if isinstance(node, ast.expr) and self.is_set(node):
            sink = self._set_sink(node)
            if sink:
                self.report(node, SET_ORDER, f"{sink}: {ast.unparse(node)} (a set's order "
                            "varies with PYTHONHASHSEED: sort it first)")

    def _check_import(self, node: ast.AST, name: str, module: str | None = None) -> None:
        module = module if module is not None else name
        parts = name.split(".")
        rule = next((MODULE_RULES[".".join(parts[:i])] for i in range(len(parts), 0, -1)
                     if ".".join(parts[:i]) in MODULE_RULES), None)
        if module.split(".")[0] in ALLOWED_MODULES:
            return
        self.report(node, rule or IMPORT, f"imports {name}" + (
            "" if rule else ", not on the allow-list of pure modules (ALLOWED_MODULES in "
            "tests/domain/determinism.py)"))

    def _check_attribute(self, node: ast.Attribute) -> None:
        shown = ast.unparse(node)
        if node.attr in CLOCK_ATTRS:
            self.report(node, WALL_CLOCK, f"{shown} reads the clock; take `now` as an argument")
        elif node.attr == "__hash__":
            self.report(node, HASH, f"{shown}")

    def _check_call(self, node: ast.Call) -> None:
        func = node.func
        if self._builtin(func, {"getattr"}) and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) \
                and node.args[1].value in CLOCK_ATTRS | {"__hash__"}:
            self.report(node, WALL_CLOCK if node.args[1].value in CLOCK_ATTRS else HASH,
                        ast.unparse(node))
        if not isinstance(func, ast.Attribute):
            return
        has_tz = len(node.args) >= 2 or any(k.arg == "tz" for k in node.keywords)
        if func.attr == "astimezone" and not node.args and not node.keywords \
                or func.attr == "fromtimestamp" and not has_tz:
            self.report(node, ENVIRONMENT, f"{ast.unparse(node)} uses the machine's local "
                        "time zone; pass UTC")
