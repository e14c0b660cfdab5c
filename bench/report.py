"""Printing figures as a plain table and saving them as JSON (with the machine they came from)."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024**2, 1),
            "python": platform.python_version(), "load_avg": os.getloadavg()}


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """``columns``: (header, dotted key into each row)."""
    def get(row: dict, key: str):
        for part in key.split("."):
            row = row.get(part) if isinstance(row, dict) else None
        return "-" if row is None else row
    cells = [[str(get(r, k)) for _, k in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, (h, _) in enumerate(columns)]
    line = " | ".join(h.ljust(w) for (h, _), w in zip(columns, widths))
    out = [line, "-+-".join("-" * w for w in widths)]
    out += [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def save(name: str, payload: dict, path: str | None, stem: str | None = None) -> Path:
    """``stem`` names the file when it should differ from ``name`` (default: ``name``)."""
    target = Path(path) if path else RESULTS / (
        f"{stem or name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"bench": name, "at": datetime.now(UTC).isoformat(),
                                  "machine": machine(), **payload}, indent=2, default=str))
    return target
