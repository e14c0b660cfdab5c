"""Calendar-correct billing periods (domain/periods.py)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.periods import add_months, boundary, index_at, period_key, require_utc
from tests.domain.helpers import at, examples

# Monthly boundaries --------------------------------------------------------------------------

JAN31_2024 = at(2024, 1, 31, 12)
MONTHLY_FROM_JAN31_2024 = [
    at(2024, 1, 31, 12), at(2024, 2, 29, 12), at(2024, 3, 31, 12), at(2024, 4, 30, 12),
    at(2024, 5, 31, 12), at(2024, 6, 30, 12), at(2024, 7, 31, 12), at(2024, 8, 31, 12),
    at(2024, 9, 30, 12), at(2024, 10, 31, 12), at(2024, 11, 30, 12), at(2024, 12, 31, 12),
    at(2025, 1, 31, 12), at(2025, 2, 28, 12), at(2025, 3, 31, 12), at(2025, 4, 30, 12),
]


def test_monthly_boundaries_from_jan_31_across_a_leap_year_keep_the_anchor_day():
    got = [boundary(JAN31_2024, "month", 1, i) for i in range(len(MONTHLY_FROM_JAN31_2024))]
    assert got == MONTHLY_FROM_JAN31_2024


def test_boundaries_are_computed_from_the_anchor_never_chained():
    # Chaining would give Feb 29 -> Mar 29; from the anchor it is Mar 31.
    assert boundary(JAN31_2024, "month", 1, 2) == at(2024, 3, 31, 12)
    assert add_months(add_months(JAN31_2024, 1), 1) == at(2024, 3, 29, 12)  # the trap avoided


def test_jan_31_in_a_common_year_clamps_to_feb_28():
    assert boundary(at(2023, 1, 31), "month", 1, 1) == at(2023, 2, 28)
    assert boundary(at(2023, 1, 31), "month", 1, 2) == at(2023, 3, 31)


@pytest.mark.parametrize(("anchor", "expected"), [
    (at(2024, 3, 31), [at(2024, 4, 30), at(2024, 5, 31), at(2024, 6, 30), at(2024, 7, 31)]),
    (at(2024, 1, 30), [at(2024, 2, 29), at(2024, 3, 30), at(2024, 4, 30), at(2024, 5, 30)]),
    (at(2024, 1, 29), [at(2024, 2, 29), at(2024, 3, 29), at(2024, 4, 29), at(2024, 5, 29)]),
    (at(2024, 1, 28), [at(2024, 2, 28), at(2024, 3, 28), at(2024, 4, 28), at(2024, 5, 28)]),
    (at(2024, 12, 31), [at(2025, 1, 31), at(2025, 2, 28), at(2025, 3, 31), at(2025, 4, 30)]),
    (at(2024, 2, 29), [at(2024, 3, 29), at(2024, 4, 29), at(2024, 5, 29), at(2024, 6, 29)]),
])
def test_monthly_boundaries_keep_the_anchor_day(anchor, expected):
    assert [boundary(anchor, "month", 1, i) for i in range(1, 5)] == expected


def test_time_of_day_and_microseconds_are_kept():
    anchor = at(2024, 1, 31, 23, 59, 59, 999_999)
    assert boundary(anchor, "month", 1, 1) == at(2024, 2, 29, 23, 59, 59, 999_999)


@pytest.mark.parametrize(("count", "expected"), [
    (3, [at(2023, 11, 30), at(2024, 2, 29), at(2024, 5, 30), at(2024, 8, 30), at(2024, 11, 30)]),
    (6, [at(2023, 11, 30), at(2024, 5, 30), at(2024, 11, 30), at(2025, 5, 30), at(2025, 11, 30)]),
    (2, [at(2023, 11, 30), at(2024, 1, 30), at(2024, 3, 30), at(2024, 5, 30), at(2024, 7, 30)]),
])
def test_multi_month_intervals(count, expected):
    assert [boundary(at(2023, 11, 30), "month", count, i) for i in range(5)] == expected


def test_quarterly_from_aug_31_clamps_in_february_only():
    got = [boundary(at(2023, 8, 31), "month", 6, i) for i in range(4)]
    assert got == [at(2023, 8, 31), at(2024, 2, 29), at(2024, 8, 31), at(2025, 2, 28)]


# Yearly -------------------------------------------------------------------------------------


def test_yearly_feb_29_anchor_clamps_in_common_years_and_returns_in_leap_years():
    anchor = at(2024, 2, 29, 8, 30)
    got = [boundary(anchor, "year", 1, i) for i in range(6)]
    assert got == [at(2024, 2, 29, 8, 30), at(2025, 2, 28, 8, 30), at(2026, 2, 28, 8, 30),
                   at(2027, 2, 28, 8, 30), at(2028, 2, 29, 8, 30), at(2029, 2, 28, 8, 30)]


@pytest.mark.parametrize(("count", "expected"), [
    (2, [at(2026, 2, 28), at(2028, 2, 29), at(2030, 2, 28)]),
    (4, [at(2028, 2, 29), at(2032, 2, 29), at(2036, 2, 29)]),
])
def test_multi_year_intervals_from_feb_29(count, expected):
    assert [boundary(at(2024, 2, 29), "year", count, i) for i in (1, 2, 3)] == expected


def test_2100_is_not_a_leap_year():
    assert boundary(at(2096, 2, 29), "year", 4, 1) == at(2100, 2, 28)
    assert boundary(at(2096, 2, 29), "year", 4, 2) == at(2104, 2, 29)


@given(anchor=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1),
                           timezones=st.just(UTC)),
       index=st.integers(0, 300))
@settings(max_examples=examples(200), deadline=None)
def test_year_equals_twelve_months(anchor, index):
    assert boundary(anchor, "year", 1, index) == boundary(anchor, "month", 12, index)


# Fixed units --------------------------------------------------------------------------------

UNITS = {"second": timedelta(seconds=1), "minute": timedelta(minutes=1),
         "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("count", [1, 2, 7, 90, 1000])
def test_fixed_units_are_exact_multiples(unit, count):
    anchor = at(2024, 2, 28, 23, 59, 30)
    step = UNITS[unit] * count
    for index in (0, 1, 2, 3, 37):
        start = boundary(anchor, unit, count, index)
        assert start == anchor + step * index
        assert index_at(anchor, unit, count, start) == index
        if index:
            assert index_at(anchor, unit, count, start - timedelta(microseconds=1)) == index - 1
        assert index_at(anchor, unit, count, start + step - timedelta(microseconds=1)) == index


def test_day_interval_crosses_feb_29_as_exact_days():
    assert boundary(at(2024, 2, 28, 12), "day", 1, 1) == at(2024, 2, 29, 12)
    assert boundary(at(2024, 2, 28, 12), "day", 1, 2) == at(2024, 3, 1, 12)
    assert boundary(at(2024, 2, 28, 12), "week", 1, 1) == at(2024, 3, 6, 12)


@pytest.mark.parametrize(("interval", "count", "index", "expected"), [
    ("second", 1, 3, at(2024, 1, 31, 12, 0, 3)),
    ("second", 45, 2, at(2024, 1, 31, 12, 1, 30)),
    ("minute", 1, 90, at(2024, 1, 31, 13, 30)),
    ("minute", 15, 4, at(2024, 1, 31, 13)),
    ("hour", 1, 12, at(2024, 2, 1, 0)),
    ("hour", 6, 5, at(2024, 2, 1, 18)),
    ("day", 1, 29, at(2024, 2, 29, 12)),
    ("day", 3, 10, at(2024, 3, 1, 12)),
    ("week", 1, 4, at(2024, 2, 28, 12)),
    ("week", 2, 3, at(2024, 3, 13, 12)),
    ("month", 1, 1, at(2024, 2, 29, 12)),
    ("month", 12, 1, at(2025, 1, 31, 12)),
    ("year", 1, 1, at(2025, 1, 31, 12)),
    ("year", 3, 2, at(2030, 1, 31, 12)),
])
def test_every_unit_with_counts(interval, count, index, expected):
    assert boundary(JAN31_2024, interval, count, index) == expected
    assert index_at(JAN31_2024, interval, count, expected) == index


# index_at ------------------------------------------------------------------------------------


def test_index_at_on_and_around_clamped_boundaries():
    anchor = JAN31_2024
    assert index_at(anchor, "month", 1, anchor) == 0
    assert index_at(anchor, "month", 1, at(2024, 2, 29, 11, 59, 59, 999_999)) == 0
    assert index_at(anchor, "month", 1, at(2024, 2, 29, 12)) == 1
    assert index_at(anchor, "month", 1, at(2024, 3, 1)) == 1
    assert index_at(anchor, "month", 1, at(2024, 3, 31, 11, 59, 59)) == 1
    assert index_at(anchor, "month", 1, at(2024, 3, 31, 12)) == 2
    assert index_at(anchor, "month", 1, at(2025, 2, 28, 12)) == 13
    assert index_at(anchor, "month", 1, at(2025, 2, 28, 11)) == 12


def test_index_at_before_the_anchor_is_an_error():
    with pytest.raises(ValueError, match="before the billing anchor"):
        index_at(JAN31_2024, "month", 1, JAN31_2024 - timedelta(microseconds=1))
    with pytest.raises(ValueError, match="before the billing anchor"):
        index_at(JAN31_2024, "day", 1, JAN31_2024 - timedelta(days=3))


INTERVALS = st.sampled_from(["second", "minute", "hour", "day", "week", "month", "year"])


@st.composite
def anchor_interval_instant(draw):
    interval = draw(INTERVALS)
    count = draw(st.integers(1, {"second": 1000, "minute": 1000, "hour": 1000, "day": 40,
                                 "week": 40, "month": 24, "year": 4}[interval]))
    anchor = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                               timezones=st.just(UTC)))
    # Instants from the anchor to up to 300 periods later, with boundaries and their
    # immediate neighbours (the interesting cases) drawn on purpose.
    periods = st.integers(1, 300)
    span = boundary(anchor, interval, count, draw(periods)) - anchor
    offset = draw(st.one_of(
        st.timedeltas(min_value=timedelta(0), max_value=span),
        st.integers(0, 300).map(lambda i: boundary(anchor, interval, count, i) - anchor),
        periods.map(
            lambda i: boundary(anchor, interval, count, i) - anchor - timedelta(microseconds=1)),
    ))
    return anchor, interval, count, anchor + offset


@given(anchor_interval_instant())
@settings(max_examples=examples(600), deadline=None)
def test_index_at_is_consistent_with_boundary(case):
    anchor, interval, count, instant = case
    i = index_at(anchor, interval, count, instant)
    assert i >= 0
    assert boundary(anchor, interval, count, i) <= instant < boundary(anchor, interval, count,
                                                                       i + 1)


@given(anchor=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                           timezones=st.just(UTC)),
       interval=st.sampled_from(["month", "year"]), count=st.integers(1, 24),
       index=st.integers(0, 200))
@settings(max_examples=examples(400), deadline=None)
def test_calendar_boundaries_keep_the_anchor_day_clamped(anchor, interval, count, index):
    start = boundary(anchor, interval, count, index)
    nxt = boundary(anchor, interval, count, index + 1)
    assert start < nxt
    assert start.day == min(anchor.day, calendar.monthrange(start.year, start.month)[1])
    assert start.time() == anchor.time()
    assert start.tzinfo == UTC
    months = (start.year - anchor.year) * 12 + start.month - anchor.month
    assert months == index * count * (12 if interval == "year" else 1)


# Time zones ------------------------------------------------------------------------------------


NAIVE = datetime(2024, 1, 31, 12)


@pytest.mark.parametrize("call", [
    lambda: boundary(NAIVE, "month", 1, 1),
    lambda: boundary(NAIVE, "day", 1, 1),
    lambda: index_at(NAIVE, "month", 1, JAN31_2024),
    lambda: index_at(JAN31_2024, "month", 1, NAIVE),
    lambda: index_at(JAN31_2024, "second", 1, NAIVE),
    lambda: period_key(NAIVE),
    lambda: require_utc(NAIVE),
], ids=["boundary-month", "boundary-day", "index_at-anchor", "index_at-at", "index_at-fixed",
        "period_key", "require_utc"])
def test_naive_datetimes_are_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_require_utc_names_the_field_and_normalises_offsets():
    with pytest.raises(ValueError, match="^cancel_at must be timezone-aware"):
        require_utc(NAIVE, "cancel_at")
    paris = timezone(timedelta(hours=1))
    value = require_utc(datetime(2024, 1, 31, 13, tzinfo=paris))
    assert value == JAN31_2024 and value.tzinfo == UTC


def test_non_utc_anchor_is_computed_in_utc():
    # 2024-01-31 23:30 at UTC-5 is 2024-02-01 04:30 UTC: the anchor day is the 1st in UTC.
    anchor = datetime(2024, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert boundary(anchor, "month", 1, 1) == at(2024, 3, 1, 4, 30)
    assert boundary(anchor, "month", 1, 1).tzinfo == UTC
    assert index_at(anchor, "month", 1, at(2024, 3, 1, 4, 30)) == 1


# period_key -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "key"), [
    (at(2024, 2, 29, 12), "20240229T120000Z"),
    (at(2024, 1, 31, 0, 0, 0), "20240131T000000Z"),
    (at(2025, 12, 31, 23, 59, 59), "20251231T235959Z"),
    (datetime(2024, 3, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=2))), "20240229T230203Z"),
])
def test_period_key_format(start, key):
    assert period_key(start) == key


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(UTC)))
@settings(max_examples=examples(200), deadline=None)
def test_period_key_is_compact_utc_iso_to_the_second(start):
    key = period_key(start)
    assert len(key) == 16 and key[8] == "T" and key.endswith("Z")
    assert datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == start.replace(
        microsecond=0)
