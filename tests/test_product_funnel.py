"""Funnel (metrics.md "Funnel"): greedy ordered matching within the window, per entry date and device.

Each scenario uses its own entry device, so one funnel run over all of them is sliced per rule.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from lakehouse.transforms.gold import with_activity_date
from lakehouse.transforms.product import FUNNEL_SCHEMA, funnel_daily

D = dt.date
STEPS = ["item_view", "add_to_cart", "checkout_start", "purchase"]
EVENT_SCHEMA = "event_id string, event string, ts string, user_id string, device string, payment_status string"


def make_events(spark, rows, timezone="UTC"):
    """(event, ts 'YYYY-MM-DD HH:MM:SS' UTC, user, device[, payment_status]) -> active events with activity_date."""
    full = [(f"e{i}", r[0], r[1], r[2], r[3], r[4] if len(r) > 4 else ("success" if r[0] == "purchase" else None))
            for i, r in enumerate(rows)]
    df = spark.createDataFrame(full, EVENT_SCHEMA).withColumn("ts", F.to_timestamp("ts"))
    return df.transform(with_activity_date(timezone))


SCENARIOS = [
    # out of order: the cart precedes the entry view -> only step 1.
    ("add_to_cart", "2024-01-01 09:00:00", "u1", "s_order"),
    ("item_view", "2024-01-01 10:00:00", "u1", "s_order"),
    ("checkout_start", "2024-01-01 10:30:00", "u1", "s_order"),
    ("purchase", "2024-01-01 11:00:00", "u1", "s_order"),
    # out of order later on: purchase before checkout -> steps 1-3 only.
    ("item_view", "2024-01-01 10:00:00", "u2", "s_order"),
    ("add_to_cart", "2024-01-01 10:05:00", "u2", "s_order"),
    ("purchase", "2024-01-01 10:10:00", "u2", "s_order"),
    ("checkout_start", "2024-01-01 10:20:00", "u2", "s_order"),
    # window: cart exactly at entry + 14 days counts, checkout one second later does not.
    ("item_view", "2024-01-01 10:00:00", "u3", "s_window"),
    ("add_to_cart", "2024-01-15 10:00:00", "u3", "s_window"),
    ("checkout_start", "2024-01-15 10:00:01", "u3", "s_window"),
    ("purchase", "2024-01-15 10:00:02", "u3", "s_window"),
    # equal timestamps count as "at or after": all four steps.
    ("purchase", "2024-01-01 12:00:00", "u4", "s_equal"),
    ("checkout_start", "2024-01-01 12:00:00", "u4", "s_equal"),
    ("add_to_cart", "2024-01-01 12:00:00", "u4", "s_equal"),
    ("item_view", "2024-01-01 12:00:00", "u4", "s_equal"),
    # two entry days: 01-01 (first view of the day on s_two_a; a later view on s_two_b does not
    # re-enter) and 01-02 on s_two_b; the same later steps complete both entries.
    ("item_view", "2024-01-01 10:00:00", "u5", "s_two_a"),
    ("item_view", "2024-01-01 12:00:00", "u5", "s_two_b"),
    ("item_view", "2024-01-02 08:00:00", "u5", "s_two_b"),
    ("add_to_cart", "2024-01-02 09:00:00", "u5", "s_two_b"),
    ("checkout_start", "2024-01-02 09:10:00", "u5", "s_two_b"),
    ("purchase", "2024-01-02 09:20:00", "u5", "s_two_b"),
    # a failed payment is not the purchase step; the later successful one is.
    ("item_view", "2024-01-01 10:00:00", "u6", "s_pay"),
    ("add_to_cart", "2024-01-01 10:01:00", "u6", "s_pay"),
    ("checkout_start", "2024-01-01 10:02:00", "u6", "s_pay"),
    ("purchase", "2024-01-01 10:03:00", "u6", "s_pay", "failed"),
    ("item_view", "2024-01-01 10:00:00", "u7", "s_pay"),
    ("add_to_cart", "2024-01-01 10:01:00", "u7", "s_pay"),
    ("checkout_start", "2024-01-01 10:02:00", "u7", "s_pay"),
    ("purchase", "2024-01-01 10:03:00", "u7", "s_pay", "failed"),
    ("purchase", "2024-01-01 10:04:00", "u7", "s_pay", "success"),
    # an entry with no device is grouped under "unknown".
    ("item_view", "2024-01-03 10:00:00", "u8", None),
]


@pytest.fixture(scope="module")
def funnel(spark):
    """The funnel over all scenarios, computed once and kept as a local DataFrame."""
    got = funnel_daily(make_events(spark, SCENARIOS), STEPS, window_days=14)
    return spark.createDataFrame(got.collect(), got.schema)


def _rows(spark, date, device, users):
    return [(date, device, k, name, n) for k, (name, n) in enumerate(zip(STEPS, users), start=1)]


def _expected(spark, *groups):
    return spark.createDataFrame([r for g in groups for r in g], FUNNEL_SCHEMA)


def _slice(df, *devices):
    return df.filter(F.col("device").isin(*devices)).orderBy("activity_date", "device", "step_index")


def _types(df):
    return [(f.name, f.dataType) for f in df.schema.fields]


def test_funnel_schema_and_unique_keys(spark, funnel):
    assert _types(funnel) == _types(spark.createDataFrame([], FUNNEL_SCHEMA))
    keys = [(r.activity_date, r.device, r.step_index) for r in funnel.collect()]
    assert len(keys) == len(set(keys)) and all(all(k) for k in keys)


def test_funnel_steps_out_of_order_are_not_matched(spark, funnel):
    expected = _expected(spark, _rows(spark, D(2024, 1, 1), "s_order", [2, 1, 1, 0]))
    assert_df_equality(_slice(funnel, "s_order"), expected, ignore_nullable=True)


def test_funnel_step_outside_window_is_not_reached(spark, funnel):
    expected = _expected(spark, _rows(spark, D(2024, 1, 1), "s_window", [1, 1, 0, 0]))
    assert_df_equality(_slice(funnel, "s_window"), expected, ignore_nullable=True)


def test_funnel_equal_timestamps_count_as_at_or_after(spark, funnel):
    expected = _expected(spark, _rows(spark, D(2024, 1, 1), "s_equal", [1, 1, 1, 1]))
    assert_df_equality(_slice(funnel, "s_equal"), expected, ignore_nullable=True)


def test_funnel_user_entering_on_two_days_counts_on_each_entry_device(spark, funnel):
    expected = _expected(
        spark,
        _rows(spark, D(2024, 1, 1), "s_two_a", [1, 1, 1, 1]),
        _rows(spark, D(2024, 1, 2), "s_two_b", [1, 1, 1, 1]),
    )
    assert_df_equality(_slice(funnel, "s_two_a", "s_two_b"), expected, ignore_nullable=True)


def test_funnel_purchase_step_counts_successful_payments_only(spark, funnel):
    expected = _expected(spark, _rows(spark, D(2024, 1, 1), "s_pay", [2, 2, 2, 1]))
    assert_df_equality(_slice(funnel, "s_pay"), expected, ignore_nullable=True)


def test_funnel_missing_device_is_unknown(spark, funnel):
    expected = _expected(spark, _rows(spark, D(2024, 1, 3), "unknown", [1, 0, 0, 0]))
    assert_df_equality(_slice(funnel, "unknown"), expected, ignore_nullable=True)


def test_funnel_whose_events_never_occur_gives_zeros(spark):
    # REES46-like: no checkout_start at all -> steps 3 and 4 are zero, not an error.
    events = make_events(spark, [
        ("item_view", "2024-01-01 10:00:00", "u1", "web"),
        ("add_to_cart", "2024-01-01 10:01:00", "u1", "web"),
        ("purchase", "2024-01-01 10:02:00", "u1", "web"),
    ])
    got = funnel_daily(events, STEPS, window_days=14)
    assert_df_equality(got, _expected(spark, _rows(spark, D(2024, 1, 1), "web", [1, 1, 0, 0])), ignore_nullable=True)
    # A first step that never occurs: no entry, no rows (and the contract schema).
    none = funnel_daily(events, ["signup", "purchase"], window_days=14)
    assert _types(none) == _types(got)
    assert none.count() == 0
