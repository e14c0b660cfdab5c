"""docs/rules.md is where the rule numbers used in code are defined: every rule D1-D23 has a
section, every test it cites exists (a renamed test would otherwise leave the page citing
nothing), and the code mentions no rule the page does not define."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "rules.md"
NUMBERS = range(1, 24)
CITED = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
RULE = re.compile(r"\bD(\d+)\b")
SKIP = {".venv", ".git", "tests", "node_modules", "__pycache__"}


def _doc() -> str:
    return RULES.read_text(encoding="utf-8")


@cache
def _functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def _sections() -> dict[int, str]:
    """Each `### Dn ...` heading and the text up to the next heading."""
    parts = re.split(r"^#{2,3} ", _doc(), flags=re.MULTILINE)
    found: dict[int, str] = {}
    for part in parts:
        m = re.match(r"D(\d+)\b", part)
        if m:
            found[int(m.group(1))] = part
    return found


def test_every_rule_has_a_section_citing_a_test():
    sections = _sections()
    assert sorted(sections) == list(NUMBERS)
    for number, text in sections.items():
        assert CITED.search(text), f"D{number} cites no test"


def test_every_cited_test_exists():
    cited = CITED.findall(_doc())
    assert cited
    missing = []
    for path, name in cited:
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif name and (not name.startswith("test") or name not in _functions(file)):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/rules.md cites tests that do not exist: {missing}"


def _code_files():
    for path in ROOT.rglob("*.py"):
        if not SKIP.intersection(path.relative_to(ROOT).parts):
            yield path


def test_code_mentions_only_defined_rules():
    used: dict[int, str] = {}
    for path in _code_files():
        for m in RULE.finditer(path.read_text(encoding="utf-8")):
            used.setdefault(int(m.group(1)), str(path.relative_to(ROOT)))
    assert used, "no rule number found in the code: is the scan looking in the right place?"
    unknown = {f"D{n}": where for n, where in used.items() if n not in NUMBERS}
    assert not unknown, f"rule numbers not defined in docs/rules.md: {unknown}"


def test_the_docs_and_readme_point_nowhere_outside_the_repository():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "shared/" not in text and "DOMAIN.md" not in text, path.name
