"""Revenue, sessions, event counts, page views, hourly activity, quizzes and courses on tiny data."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from chispa import assert_approx_df_equality, assert_df_equality

from lakehouse.transforms.gold import DateRange, calendar, with_activity_date
from lakehouse.transforms.product import (
    course_progress,
    event_counts_daily,
    hourly_activity,
    page_views_daily,
    quiz_daily,
    revenue_daily,
    sessions_daily,
    user_revenue,
)

D = dt.date
EVENT_SCHEMA = (
    "event_id string, event string, ts string, user_id string, device string, page string, payment_status string, "
    "amount double, quiz_id string, score double, max_score double, passed boolean, duration_s double, "
    "course_id string, progress_pct double"
)
FIELDS = [f.split()[0] for f in EVENT_SCHEMA.split(", ")]


def make_events(spark, rows, timezone="UTC"):
    """Dicts with event, ts ('YYYY-MM-DD HH:MM:SS' UTC), user_id and any other field -> events with activity_date."""
    full = [tuple({"event_id": f"e{i}", **r}.get(f) for f in FIELDS) for i, r in enumerate(rows)]
    df = spark.createDataFrame(full, EVENT_SCHEMA).withColumn("ts", F.to_timestamp("ts"))
    return df.transform(with_activity_date(timezone))


def ev(event, ts, user, **kw):
    return {"event": event, "ts": ts, "user_id": user, **kw}


def _types(df):
    return [(f.name, f.dataType) for f in df.schema.fields]


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


def test_sessions_belong_to_the_local_date_of_their_first_event(spark):
    tz = "Europe/Paris"
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 3))
    sessions = spark.createDataFrame([
        ("u1", "s1", "2024-01-01 23:30:00", 2400),  # 00:30 on 01-02 in Paris
        ("u1", "s2", "2024-01-02 10:00:00", 600),
        ("u2", "s3", "2024-01-01 10:00:00", 0),
    ], "user_id string, session_id string, session_start string, duration_s long").withColumn(
        "session_start", F.to_timestamp("session_start"))
    got = sessions_daily(calendar(spark, rng), sessions, tz)
    expected = spark.createDataFrame([
        (D(2024, 1, 1), 1, 1, 0.0, 0.0, 0.0),
        (D(2024, 1, 2), 2, 1, 3000.0, 1500.0, 3000.0),
        (D(2024, 1, 3), 0, 0, 0.0, None, None),
    ], "activity_date date, sessions long, users long, total_session_seconds double, "
       "avg_session_seconds double, avg_time_per_user_seconds double")
    assert_df_equality(got, expected, ignore_nullable=True)


def test_event_counts_include_uninstalls_zero_filled_inside_the_range(spark):
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 2))
    events = make_events(spark, [
        ev("page_view", "2024-01-01 10:00:00", "u1"),
        ev("page_view", "2024-01-01 11:00:00", "u1"),
        ev("page_view", "2024-01-01 12:00:00", "u2"),
        ev("app_uninstall", "2024-01-01 13:00:00", "u2"),
        ev("page_view", "2024-01-02 10:00:00", "u1"),
        ev("app_uninstall", "2024-01-05 10:00:00", "u3"),  # after the range: left out
    ])
    got = event_counts_daily(calendar(spark, rng), events, rng)
    expected = spark.createDataFrame([
        (D(2024, 1, 1), "app_uninstall", 1, 1), (D(2024, 1, 1), "page_view", 3, 2),
        (D(2024, 1, 2), "app_uninstall", 0, 0), (D(2024, 1, 2), "page_view", 1, 1),
    ], "activity_date date, event string, events long, users long")
    assert_df_equality(got, expected, ignore_nullable=True)


def test_page_views_per_page_with_unknown_page(spark):
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 2))
    active = make_events(spark, [
        ev("page_view", "2024-01-01 10:00:00", "u1", page="/home"),
        ev("page_view", "2024-01-01 11:00:00", "u1", page="/home"),
        ev("page_view", "2024-01-01 12:00:00", "u2", page="/cart"),
        ev("item_view", "2024-01-01 12:00:00", "u2", page="/cart"),  # not a page view
        ev("page_view", "2024-01-02 10:00:00", "u1", page=None),
    ])
    expected = spark.createDataFrame([
        (D(2024, 1, 1), "/cart", 1, 1), (D(2024, 1, 1), "/home", 2, 1), (D(2024, 1, 2), "unknown", 1, 1),
    ], "activity_date date, page string, views long, users long")
    assert_df_equality(page_views_daily(active, rng), expected, ignore_nullable=True)


def test_hourly_activity_uses_local_weekday_and_hour(spark):
    events = make_events(spark, [
        ev("page_view", "2024-01-07 20:00:00", "u1"),      # Sunday UTC = Monday 05:00 in Tokyo
        ev("page_view", "2024-01-07 20:30:00", "u2"),
        ev("page_view", "2024-01-07 10:00:00", "u1"),      # Sunday 19:00 in Tokyo
        ev("app_uninstall", "2024-01-08 15:30:00", "u1"),  # Tuesday 00:30 in Tokyo
    ], timezone="Asia/Tokyo")
    expected = spark.createDataFrame([
        ("app_uninstall", 2, 0, 1), ("page_view", 1, 5, 2), ("page_view", 7, 19, 1),
    ], "event string, day_of_week int, hour int, events long")
    assert_df_equality(hourly_activity(events), expected, ignore_nullable=True)


def test_quiz_pass_rate_and_score_pct_ignore_unusable_scores(spark):
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 2))
    active = make_events(spark, [
        ev("quiz_attempt", "2024-01-01 10:00:00", "u1", quiz_id="q1", score=8.0, max_score=10.0, passed=True, duration_s=60.0),
        ev("quiz_attempt", "2024-01-01 11:00:00", "u1", quiz_id="q1", score=4.0, max_score=10.0, passed=False, duration_s=120.0),
        ev("quiz_attempt", "2024-01-01 12:00:00", "u2", quiz_id="q1", score=5.0, max_score=0.0),  # no score %, no pass
        ev("quiz_attempt", "2024-01-02 10:00:00", "u3", quiz_id=None, score=10.0, max_score=10.0, passed=True, duration_s=30.0),
    ])
    expected = spark.createDataFrame([
        (D(2024, 1, 1), "q1", 3, 2, 1, 1 / 3, 60.0, 90.0),
        (D(2024, 1, 2), "unknown", 1, 1, 1, 1.0, 100.0, 30.0),
    ], "activity_date date, quiz_id string, attempts long, participants long, passes long, "
       "pass_rate double, avg_score_pct double, avg_duration_s double")
    assert_approx_df_equality(quiz_daily(active, rng), expected, 1e-9, ignore_nullable=True)


def test_course_completion_counts_distinct_users_reaching_100(spark):
    active = make_events(spark, [
        ev("course_progress", "2024-01-01 10:00:00", "u1", course_id="c1", progress_pct=30.0),
        ev("course_progress", "2024-01-02 10:00:00", "u1", course_id="c1", progress_pct=100.0),
        ev("course_progress", "2024-01-01 10:00:00", "u2", course_id="c1", progress_pct=50.0),
        ev("course_progress", "2024-01-01 10:00:00", "u3", course_id="c1", progress_pct=100.0),
        ev("course_progress", "2024-01-02 10:00:00", "u3", course_id="c1", progress_pct=100.0),
        ev("course_progress", "2024-01-01 10:00:00", "u4", course_id="c2", progress_pct=10.0),
        ev("quiz_attempt", "2024-01-01 10:00:00", "u5", course_id="c2"),  # not a progress event
    ])
    got = course_progress(active)
    expected = spark.createDataFrame([("c1", 3, 2, 2 / 3), ("c2", 1, 0, 0.0)],
                                     "course_id string, learners long, completions long, completion_rate double")
    assert_approx_df_equality(got, expected, 1e-9, ignore_nullable=True)
