"""Retention cohorts (metrics.md "Retention"), on tiny hand-written users and user-days."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from lakehouse.transforms.common import DateRange, calendar
from lakehouse.transforms.retention import retention_daily, retention_weekly

D = dt.date
DAILY_SCHEMA = "cohort_date date, day_n int, cohort_size long, retained_users long, retained_users_unbounded long, retention_rate double"
WEEKLY_SCHEMA = "cohort_week date, week_n int, cohort_size long, retained_users long, retention_rate double"


def _users_days(spark, active: dict[str, list[dt.date]], first_seen: dict[str, dt.date]):
    """users (first_seen_date, last_active_date) and days (user_id, activity_date) as the lead's pipeline gives them."""
    days = spark.createDataFrame([(u, d) for u, ds in active.items() for d in ds], "user_id string, activity_date date")
    users = spark.createDataFrame(
        [(u, f, max(active[u]) if active.get(u) else None) for u, f in first_seen.items()],
        "user_id string, first_seen_date date, last_active_date date",
    )
    return users, days


RNG = DateRange(D(2024, 1, 1), D(2024, 1, 5))
ACTIVE = {
    "a": [D(2024, 1, 1), D(2024, 1, 3)],
    "b": [D(2024, 1, 2)],                  # first seen 01-01 by registration, not active that day
    "c": [D(2024, 1, 2), D(2024, 1, 5)],
    "d": [D(2024, 1, 1)],                  # registered before the range start: no cohort
}
FIRST_SEEN = {
    "a": D(2024, 1, 1), "b": D(2024, 1, 1), "c": D(2024, 1, 2), "d": D(2023, 12, 30),
    "e": D(2024, 1, 3),                    # profile only, never active
}


def test_retention_counts_exactly_day_n_vs_on_or_after(spark):
    users, days = _users_days(spark, ACTIVE, FIRST_SEEN)
    got = retention_daily(calendar(spark, RNG), users, days, RNG, max_day=30)
    d1, d2, d3, d4, d5 = (D(2024, 1, i) for i in range(1, 6))
    expected = spark.createDataFrame([
        # cohort 01-01 = {a, b}: b is a member but not retained on day 0 (registration only).
        (d1, 0, 2, 1, 2, 0.5), (d1, 1, 2, 1, 2, 0.5), (d1, 2, 2, 1, 1, 0.5), (d1, 3, 2, 0, 0, 0.0), (d1, 4, 2, 0, 0, 0.0),
        # cohort 01-02 = {c}: absent on days 1-2 but back on day 3, so "unbounded" stays 1.
        (d2, 0, 1, 1, 1, 1.0), (d2, 1, 1, 0, 1, 0.0), (d2, 2, 1, 0, 1, 0.0), (d2, 3, 1, 1, 1, 1.0),
        # cohort 01-03 = {e}: never active.
        (d3, 0, 1, 0, 0, 0.0), (d3, 1, 1, 0, 0, 0.0), (d3, 2, 1, 0, 0, 0.0),
        # empty cohorts are still rows of the range, with a null rate.
        (d4, 0, 0, 0, 0, None), (d4, 1, 0, 0, 0, None),
        (d5, 0, 0, 0, 0, None),
    ], DAILY_SCHEMA)
    assert_df_equality(got, expected, ignore_nullable=True)


def test_retention_day_n_stops_at_max_day_and_range_end(spark):
    users, days = _users_days(spark, ACTIVE, FIRST_SEEN)
    got = retention_daily(calendar(spark, RNG), users, days, RNG, max_day=2)
    d1, d2, d3, d4, d5 = (D(2024, 1, i) for i in range(1, 6))
    expected = spark.createDataFrame([
        (d1, 0, 2, 1, 2, 0.5), (d1, 1, 2, 1, 2, 0.5), (d1, 2, 2, 1, 1, 0.5),
        # c's last active day (offset 3) is beyond max_day: still counted as "on or after" day 2.
        (d2, 0, 1, 1, 1, 1.0), (d2, 1, 1, 0, 1, 0.0), (d2, 2, 1, 0, 1, 0.0),
        (d3, 0, 1, 0, 0, 0.0), (d3, 1, 1, 0, 0, 0.0), (d3, 2, 1, 0, 0, 0.0),
        (d4, 0, 0, 0, 0, None), (d4, 1, 0, 0, 0, None),
        (d5, 0, 0, 0, 0, None),
    ], DAILY_SCHEMA)
    assert_df_equality(got, expected, ignore_nullable=True)


def test_retention_weekly_monday_weeks_any_day_counts_once(spark):
    rng = DateRange(D(2024, 1, 3), D(2024, 1, 24))  # Wednesday .. Wednesday; Mondays 01-01, 08, 15, 22
    active = {
        "a": [D(2024, 1, 3), D(2024, 1, 7), D(2024, 1, 15)],  # weeks 0 (twice) and 2
        "b": [D(2024, 1, 8), D(2024, 1, 9)],                  # first seen Sunday 01-07: week 1, counted once
        "c": [D(2024, 1, 8), D(2024, 1, 23)],
        "d": [D(2024, 1, 3)],                                 # registered 01-02, before the range: no cohort
    }
    first = {"a": D(2024, 1, 3), "b": D(2024, 1, 7), "c": D(2024, 1, 8), "d": D(2024, 1, 2)}
    users, days = _users_days(spark, active, first)
    got = retention_weekly(calendar(spark, rng), users, days, rng, max_week=2)
    w1, w2, w3, w4 = D(2024, 1, 1), D(2024, 1, 8), D(2024, 1, 15), D(2024, 1, 22)
    expected = spark.createDataFrame([
        (w1, 0, 2, 1, 0.5), (w1, 1, 2, 1, 0.5), (w1, 2, 2, 1, 0.5),
        (w2, 0, 1, 1, 1.0), (w2, 1, 1, 0, 0.0), (w2, 2, 1, 1, 1.0),
        (w3, 0, 0, 0, None), (w3, 1, 0, 0, None),   # week 2 of 01-15 starts 01-29, after the range
        (w4, 0, 0, 0, None),
    ], WEEKLY_SCHEMA)
    assert_df_equality(got, expected, ignore_nullable=True)
