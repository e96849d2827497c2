"""Loyalty rules of metrics.md (transforms/loyalty.py) on tiny hand-computed data."""

from __future__ import annotations

from chispa import assert_df_equality

from lakehouse.transforms.common import with_neighbours
from lakehouse.transforms.engagement import engagement_daily, rolling_active
from lakehouse.transforms.loyalty import loyalty_balances, loyalty_daily, loyalty_events

from gold_rows import D, at, build, ev, rows


def test_loyalty_participation_and_outstanding_points(spark):
    events = [ev("a", at(1), event="points_earned", points=100), ev("a", at(2), event="points_redeemed", points=30),
              ev("b", at(2), event="points_earned", points=10), ev("c", at(2))]
    e, days, users, rng, cal = build(spark, events)
    r = rolling_active(cal, with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = engagement_daily(cal, days, r, users, e)
    points = loyalty_events(e)
    got = loyalty_daily(cal, points, daily)
    assert rows(got, "activity_date", "points_earned", "points_redeemed", "earners", "redeemers", "participants",
                "participation_rate", "outstanding_points") == [
        (D(2026, 1, 1), 100, 0, 1, 0, 1, 1.0, 100),
        (D(2026, 1, 2), 10, 30, 1, 1, 2, 2 / 3, 80),
    ]
    # An incremental run passes the balance before the calendar's first date (a literal, no join).
    later = loyalty_daily(cal.filter("activity_date > DATE'2026-01-01'"), points, daily, opening=100)
    assert rows(later, "activity_date", "outstanding_points") == [(D(2026, 1, 2), 80)]
    bal = loyalty_balances(points)
    expected = spark.createDataFrame(
        [("a", 100, 30, 70, D(2026, 1, 1), D(2026, 1, 2)), ("b", 10, 0, 10, D(2026, 1, 2), D(2026, 1, 2))],
        "user_id string, points_earned long, points_redeemed long, balance long, first_loyalty_date date, last_loyalty_date date",
    )
    assert_df_equality(bal, expected, ignore_nullable=True)
