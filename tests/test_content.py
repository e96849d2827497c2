"""Content rules of metrics.md (transforms/content.py): event counts, page views, hours, quizzes, courses."""

from __future__ import annotations

from chispa import assert_approx_df_equality, assert_df_equality

from lakehouse.transforms.common import DateRange, calendar
from lakehouse.transforms.content import course_progress, event_counts_daily, hourly_activity, page_views_daily, quiz_daily

from event_rows import D, ev, make_events


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


def test_event_counts_over_given_names_zero_fill_every_name_on_every_date(spark):
    rng = DateRange(D(2024, 1, 1), D(2024, 1, 2))
    events = make_events(spark, [ev("page_view", "2024-01-01 10:00:00", "u1")])
    got = event_counts_daily(calendar(spark, rng), events, rng, ["quiz_completed", "page_view"])
    expected = spark.createDataFrame([
        (D(2024, 1, 1), "page_view", 1, 1), (D(2024, 1, 1), "quiz_completed", 0, 0),
        (D(2024, 1, 2), "page_view", 0, 0), (D(2024, 1, 2), "quiz_completed", 0, 0),
    ], "activity_date date, event string, events long, users long")
    assert_df_equality(got, expected, ignore_nullable=True)
    assert event_counts_daily(calendar(spark, rng), events, rng, []).count() == 0


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
