"""Revenue rules of metrics.md (transforms/revenue.py) on tiny hand-computed data."""

from __future__ import annotations

from chispa import assert_df_equality

from lakehouse.transforms.common import DateRange, calendar
from lakehouse.transforms.revenue import revenue_daily, user_revenue

from event_rows import D, ev, make_events


def test_revenue_counts_successful_purchases_and_nulls_rates_on_zero_denominators(spark):
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 4))
    active = make_events(spark, [
        ev("purchase", "2024-01-01 10:00:00", "u1", payment_status="success", amount=10.0),
        ev("purchase", "2024-01-01 11:00:00", "u1", payment_status="success", amount=5.0),
        ev("purchase", "2024-01-01 12:00:00", "u2", payment_status="failed", amount=7.0),
        ev("purchase", "2024-01-01 13:00:00", "u3", payment_status=None, amount=3.0),  # not success -> failed
        ev("purchase", "2024-01-02 10:00:00", "u2", payment_status="success", amount=20.0),
    ])
    days = spark.createDataFrame(
        [("u1", D(2024, 1, 1)), ("u2", D(2024, 1, 1)), ("u3", D(2024, 1, 1)), ("u4", D(2024, 1, 1)),
         ("u2", D(2024, 1, 2)), ("u5", D(2024, 1, 3))],
        "user_id string, activity_date date",
    )
    got = revenue_daily(calendar(spark, rng), active, days)
    expected = spark.createDataFrame([
        (D(2024, 1, 1), 2, 15.0, 1, 2, 0.25, 3.75, 15.0),
        (D(2024, 1, 2), 1, 20.0, 1, 0, 1.0, 20.0, 20.0),
        (D(2024, 1, 3), 0, 0.0, 0, 0, 0.0, 0.0, None),     # no buyer: arppu null
        (D(2024, 1, 4), 0, 0.0, 0, 0, None, None, None),   # no active user: every rate null
    ], "activity_date date, orders long, revenue double, buyers long, failed_payments long, "
       "conversion_rate double, arpu double, arppu double")
    assert_df_equality(got, expected, ignore_nullable=True)

    per_user = user_revenue(active)
    expected_users = spark.createDataFrame([
        ("u1", 2, 15.0, D(2024, 1, 1), D(2024, 1, 1)),
        ("u2", 1, 20.0, D(2024, 1, 2), D(2024, 1, 2)),     # u3 (no successful purchase) has no row
    ], "user_id string, orders long, revenue double, first_purchase_date date, last_purchase_date date")
    assert_df_equality(per_user, expected_users, ignore_nullable=True)
