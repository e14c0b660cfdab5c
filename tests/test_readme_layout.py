"""The README's layout table names every top-level entry of the checkout (a new folder or file
without a line there fails), and every path in its first column exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORED = {".gitignore", ".dockerignore", "README.md"}


def test_the_layout_table_matches_the_tree():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    top = {path.split("/", 1)[0] for path in tracked} - IGNORED
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Layout"):readme.index("## Configuration")]
    first_cells = re.findall(r"^\| ([^|]+) \|", table, flags=re.M)
    paths = {name.rstrip("/") for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}
    assert paths, "no layout table found"
    assert top <= {p.split("/", 1)[0] for p in paths}, \
        f"not in the README layout table: {sorted(top - {p.split('/', 1)[0] for p in paths})}"
    assert all((ROOT / p).exists() for p in paths), \
        f"in the table but not in the tree: {sorted(p for p in paths if not (ROOT / p).exists())}"
