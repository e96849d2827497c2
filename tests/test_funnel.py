"""Funnel (metrics.md "Funnel"): greedy ordered matching within the window, per entry date and device.

Each scenario uses its own entry device, so one funnel run over all of them is sliced per rule.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from lakehouse.transforms.common import with_activity_date
from lakehouse.gold_incremental import funnel_rebuild_from
from lakehouse.transforms.common import DateRange
from lakehouse.transforms.funnel import FUNNEL_ENTRIES_SCHEMA, FUNNEL_SCHEMA, funnel_daily, funnel_user_entries

D = dt.date
STEPS = ["item_view", "add_to_cart", "checkout_start", "purchase"]
LAST = D(2024, 1, 15)  # the scenarios' last date: entries up to 01-01 have their 14-day window closed
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
    got = funnel_daily(make_events(spark, SCENARIOS), LAST, STEPS, window_days=14)
    return spark.createDataFrame(got.collect(), got.schema)


def _rows(spark, date, device, users, last=LAST, window_days=14):
    complete = date + dt.timedelta(days=window_days) <= last
    return [(date, device, k, name, n, complete) for k, (name, n) in enumerate(zip(STEPS, users), start=1)]


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
    got = funnel_daily(events, LAST, STEPS, window_days=14)
    assert_df_equality(got, _expected(spark, _rows(spark, D(2024, 1, 1), "web", [1, 1, 0, 0])), ignore_nullable=True)
    # A first step that never occurs: no entry, no rows (and the contract schema).
    none = funnel_daily(events, LAST, ["signup", "purchase"], window_days=14)
    assert _types(none) == _types(got)
    assert none.count() == 0


# ---------------------------------------------------------------- windows not yet closed

# A 3-day window over data ending on 01-06: an entry on d is complete when d + 3 <= 01-06.
WINDOW_EVENTS = [
    ("item_view", "2024-01-01 10:00:00", "u1", "web"),       # complete, reaches purchase on 01-02
    ("add_to_cart", "2024-01-01 10:05:00", "u1", "web"),
    ("checkout_start", "2024-01-01 10:06:00", "u1", "web"),
    ("purchase", "2024-01-02 09:00:00", "u1", "web"),
    ("item_view", "2024-01-03 10:00:00", "u2", "web"),       # 01-03 + 3 = 01-06: complete, step 2 only
    ("add_to_cart", "2024-01-05 10:00:00", "u2", "web"),
    ("item_view", "2024-01-04 23:00:00", "u3", "web"),       # 01-04 + 3 = 01-07 > 01-06: open, step 1
    ("item_view", "2024-01-06 08:00:00", "u1", "web"),       # open, all four steps on the last day
    ("add_to_cart", "2024-01-06 08:01:00", "u1", "web"),
    ("checkout_start", "2024-01-06 08:02:00", "u1", "web"),
    ("purchase", "2024-01-06 08:03:00", "u1", "web"),
]


def test_entries_whose_window_passes_the_last_date_are_flagged_incomplete(spark):
    events = make_events(spark, WINDOW_EVENTS)
    last = D(2024, 1, 6)
    got = funnel_daily(events, last, STEPS, window_days=3)
    expected = _expected(spark,
                         _rows(spark, D(2024, 1, 1), "web", [1, 1, 1, 1], last, 3),
                         _rows(spark, D(2024, 1, 3), "web", [1, 1, 0, 0], last, 3),
                         _rows(spark, D(2024, 1, 4), "web", [1, 0, 0, 0], last, 3),
                         _rows(spark, D(2024, 1, 6), "web", [1, 1, 1, 1], last, 3))
    assert_df_equality(got, expected, ignore_nullable=True)
    by_date = {r.activity_date: r.is_window_complete for r in got.select("activity_date", "is_window_complete").distinct().collect()}
    assert by_date == {D(2024, 1, 1): True, D(2024, 1, 3): True, D(2024, 1, 4): False, D(2024, 1, 6): False}


def test_per_entry_rows_carry_the_steps_reached_and_the_same_flag(spark):
    events = make_events(spark, WINDOW_EVENTS)
    got = funnel_user_entries(events, D(2024, 1, 6), STEPS, window_days=3)
    expected = spark.createDataFrame([
        (D(2024, 1, 1), "u1", "web", 4, True),
        (D(2024, 1, 3), "u2", "web", 2, True),
        (D(2024, 1, 4), "u3", "web", 1, False),
        (D(2024, 1, 6), "u1", "web", 4, False),
    ], FUNNEL_ENTRIES_SCHEMA)
    assert_df_equality(got, expected, ignore_nullable=True)


def test_a_window_closes_when_one_more_day_lands(spark):
    # The 01-04 entry's window closes once the lake's last date reaches 01-07; nothing else changes.
    events = make_events(spark, WINDOW_EVENTS + [("page_view", "2024-01-07 09:00:00", "u9", "web")])
    got = funnel_daily(events, D(2024, 1, 7), STEPS, window_days=3)
    flags = {r.activity_date: r.is_window_complete for r in got.select("activity_date", "is_window_complete").distinct().collect()}
    assert flags == {D(2024, 1, 1): True, D(2024, 1, 3): True, D(2024, 1, 4): True, D(2024, 1, 6): False}


def test_an_incremental_run_rebuilds_every_entry_whose_window_was_open():
    rng = DateRange(D(2024, 1, 1), D(2024, 3, 1))
    # New events on the day after the previous end: entries from 14 + 1 days before `since`.
    assert funnel_rebuild_from(D(2024, 2, 21), D(2024, 2, 20), rng, 14) == D(2024, 2, 6)
    # Late events inside the range: the window reaching them (and the open ones after them).
    assert funnel_rebuild_from(D(2024, 2, 10), D(2024, 2, 20), rng, 14) == D(2024, 1, 26)
    # New events only days after the previous end (a gap): still every entry open at 02-20, whose
    # window (entry + 14 > 02-20, from 02-07 on) may close now.
    assert funnel_rebuild_from(D(2024, 2, 28), D(2024, 2, 20), rng, 14) == D(2024, 2, 6)
    assert funnel_rebuild_from(D(2024, 1, 5), D(2024, 1, 10), rng, 14) == D(2024, 1, 1)
