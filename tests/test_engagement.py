"""Engagement rules of metrics.md (transforms/engagement.py) on tiny hand-computed data."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.transforms.common import with_neighbours
from lakehouse.transforms.engagement import engagement_daily, engagement_monthly, rolling_active

from gold_rows import D, at, build, ev, rows


def test_rolling_wau_and_mau_count_distinct_users_at_window_edges(spark):
    # u1 active on days 1 and 8; u2 on day 2 only; u3 on day 31 only.
    events = [ev("u1", at(1)), ev("u1", at(8)), ev("u2", at(2)), ev("u3", at(31))]
    e, days, users, rng, cal = build(spark, events)
    r = rolling_active(cal, with_neighbours(days), rng, {"wau": 7, "mau": 30})
    got = {x["activity_date"].day: (x["wau"], x["mau"]) for x in r.collect()}
    assert got[1] == (1, 1)
    assert got[7] == (2, 2)      # window [1, 7]: u1 (day 1), u2 (day 2)
    assert got[8] == (2, 2)      # window [2, 8]: u2, u1 again (counted once)
    assert got[9] == (1, 2)      # window [3, 9]: u1 (day 8); u2 left the week
    assert got[14] == (1, 2)     # [8, 14]: u1
    assert got[15] == (0, 2)     # [9, 15]: nobody this week
    assert got[30] == (0, 2)     # MAU [1, 30] still holds u1 and u2
    assert got[31] == (1, 3)     # MAU [2, 31]: u2, u1 (day 8), u3; WAU: u3


def test_engagement_daily_zero_fills_days_and_splits_new_from_existing(spark):
    events = [ev("u1", at(1)), ev("u1", at(3)), ev("u2", at(3)),
              ev("u2", at(3, 13), event="app_install"), ev("u1", at(3, 14), event="app_uninstall")]
    e, days, users, rng, cal = build(spark, events)
    r = rolling_active(cal, with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = engagement_daily(cal, days, r, users, e)
    assert rows(daily, "activity_date", "dau", "new_users", "new_active_users", "existing_active_users", "installs", "uninstalls") == [
        (D(2026, 1, 1), 1, 1, 1, 0, 0, 0),
        (D(2026, 1, 2), 0, 0, 0, 0, 0, 0),
        (D(2026, 1, 3), 2, 1, 1, 1, 1, 1),
    ]
    assert rows(daily, "activity_date", "stickiness") == [(D(2026, 1, 1), 1.0), (D(2026, 1, 2), 0.0), (D(2026, 1, 3), 1.0)]


def test_new_users_count_registrations_without_activity(spark):
    events = [ev("a", at(1)), ev("a", at(3))]
    profiles = [("z", dt.datetime(2026, 1, 2, 9), None, None, None, None, None)]
    e, days, users, rng, cal = build(spark, events, profiles)
    r = rolling_active(cal, with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = engagement_daily(cal, days, r, users, e)
    assert rows(daily, "activity_date", "new_users", "new_active_users") == [
        (D(2026, 1, 1), 1, 1), (D(2026, 1, 2), 1, 0), (D(2026, 1, 3), 0, 0),
    ]


def test_monthly_new_vs_existing_and_partial_months(spark):
    events = [ev("a", at(20)), ev("a", at(5, month=2)), ev("b", at(6, month=2)), ev("b", at(7, month=2))]
    e, days, users, rng, cal = build(spark, events)
    r = rolling_active(cal, with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = engagement_daily(cal, days, r, users, e)
    monthly = engagement_monthly(days, users, daily, rng)
    jan, feb = monthly.orderBy("month").collect()
    assert (jan["mau"], jan["new_users"], jan["new_active_users"], jan["existing_active_users"], jan["is_complete"]) == (1, 1, 1, 0, False)
    assert (feb["mau"], feb["new_users"], feb["new_active_users"], feb["existing_active_users"], feb["is_complete"]) == (2, 1, 1, 1, False)
    assert jan["avg_dau"] == pytest.approx(1 / 12)   # Jan 20..31 inside the range: 12 days, one active
    assert feb["avg_dau"] == pytest.approx(3 / 7)    # Feb 1..7: dau 0,0,0,0,1,1,1
    assert feb["stickiness"] == pytest.approx(3 / 7 / 2)
