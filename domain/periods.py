"""Calendar-correct billing periods.

Boundaries are always computed from the billing anchor (never chained period to period), so a
subscription anchored on Jan 31 renews on Feb 28/29, then Mar 31 again: the anchor day is kept
while shorter months clamp to their last day. Everything is UTC-aware.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Literal

Interval = Literal["second", "minute", "hour", "day", "week", "month", "year"]

_FIXED: dict[str, timedelta] = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}


def require_utc(value: datetime, name: str = "datetime") -> datetime:
    """Reject naive datetimes (ambiguous instants) and normalise aware ones to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by whole months, the day clamped to the target month's length."""
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def boundary(anchor: datetime, interval: Interval, count: int, index: int) -> datetime:
    """The start of period number ``index`` (0 = the anchor itself)."""
    anchor = require_utc(anchor, "anchor")
    if interval in _FIXED:
        return anchor + _FIXED[interval] * (count * index)
    months = count * index * (12 if interval == "year" else 1)
    return add_months(anchor, months)


def index_at(anchor: datetime, interval: Interval, count: int, at: datetime) -> int:
    """The index of the period that contains ``at`` (boundary(index) <= at < boundary(index+1))."""
    anchor = require_utc(anchor, "anchor")
    at = require_utc(at, "at")
    if at < anchor:
        raise ValueError("at is before the billing anchor")
    if interval in _FIXED:
        return int((at - anchor) // (_FIXED[interval] * count))
    per = count * (12 if interval == "year" else 1)
    guess = ((at.year - anchor.year) * 12 + (at.month - anchor.month)) // per
    # Clamping can put the true index one below the month arithmetic; step until consistent.
    while guess > 0 and boundary(anchor, interval, count, guess) > at:
        guess -= 1
    while boundary(anchor, interval, count, guess + 1) <= at:
        guess += 1
    return guess


def period_key(start: datetime) -> str:
    """A stable, readable key for a billing period: its start instant in compact UTC ISO form."""
    return require_utc(start, "period start").strftime("%Y%m%dT%H%M%SZ")
