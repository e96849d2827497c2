"""Gold rules of metrics.md on tiny hand-computed data."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from lakehouse.session import tuned
from lakehouse.transforms import gold as G

D = dt.date
EVENT_SCHEMA = ("event_id string, event string, ts timestamp, user_id string, device string, country string, "
                "payment_status string, amount double, points long")
PROFILE_SCHEMA = ("user_id string, registered_at timestamp, gender string, birth_date date, age int, country string, "
                  "signup_channel string")
SESSION_SCHEMA = ("user_id string, session_id string, session_start timestamp, session_end timestamp, events long, "
                  "duration_s long, is_derived boolean")


def ev(user, ts, event="page_view", device="web", country=None, status=None, amount=None, points=None, eid=None):
    return (eid or f"{user}-{ts.isoformat()}-{event}", event, ts, user, device, country, status, amount, points)


def at(day: int, hour: int = 12, month: int = 1) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


def build(spark, events, profiles=(), tz="UTC"):
    """The shared gold intermediates, as the gold step prepares them."""
    e = spark.createDataFrame(list(events), EVENT_SCHEMA).transform(G.with_activity_date(tz))
    active = e.transform(G.active_only(("app_uninstall",)))
    rng = G.date_range(active)
    days = G.user_days(active, spark.createDataFrame([], "user_id string, activity_date date, sessions long"))
    p = spark.createDataFrame(list(profiles), PROFILE_SCHEMA)
    users = G.user_dimension(days, p, G.first_event_country(e), rng, tz)
    return e, days, users, rng, G.calendar(spark, rng)


def rows(df, *cols):
    return [tuple(r[c] for c in cols) for r in df.orderBy(cols[0]).collect()]


def test_calendar_has_one_row_per_date_and_none_when_the_range_ends_before_it_starts(spark):
    # An incremental run whose first changed date is after the range's end rebuilds no date.
    rows = lambda a, b: [r.activity_date for r in G.calendar(spark, G.DateRange(a, b)).collect()]  # noqa: E731
    assert rows(dt.date(2024, 2, 28), dt.date(2024, 3, 1)) == [dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]
    assert rows(dt.date(2024, 3, 1), dt.date(2024, 3, 1)) == [dt.date(2024, 3, 1)]
    assert rows(dt.date(2024, 3, 2), dt.date(2024, 3, 1)) == []


def test_activity_date_follows_the_reporting_timezone(spark):
    # 23:30 UTC on Jan 1 is already Jan 2 in Tokyo and still Jan 1 in New York.
    events = [ev("u1", dt.datetime(2026, 1, 1, 23, 30)), ev("u2", dt.datetime(2026, 1, 2, 3, 0))]
    for tz, expected in [("UTC", [D(2026, 1, 1), D(2026, 1, 2)]),
                         ("Asia/Tokyo", [D(2026, 1, 2), D(2026, 1, 2)]),
                         ("America/New_York", [D(2026, 1, 1), D(2026, 1, 1)])]:
        e = spark.createDataFrame(events, EVENT_SCHEMA).transform(G.with_activity_date(tz))
        assert [r["activity_date"] for r in e.orderBy("user_id").collect()] == expected, tz


def test_hour_and_weekday_are_local_with_monday_as_1(spark):
    e = spark.createDataFrame([ev("u1", dt.datetime(2026, 1, 4, 23, 30))], EVENT_SCHEMA)  # Sunday 23:30 UTC
    r = e.transform(G.with_activity_date("Europe/Paris")).collect()[0]                     # Monday 00:30 in Paris
    assert (r["day_of_week"], r["hour"]) == (1, 0)


def test_rolling_wau_and_mau_count_distinct_users_at_window_edges(spark):
    # u1 active on days 1 and 8; u2 on day 2 only; u3 on day 31 only.
    events = [ev("u1", at(1)), ev("u1", at(8)), ev("u2", at(2)), ev("u3", at(31))]
    e, days, users, rng, cal = build(spark, events)
    r = G.rolling_active(cal, G.with_neighbours(days), rng, {"wau": 7, "mau": 30})
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
    r = G.rolling_active(cal, G.with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = G.engagement_daily(cal, days, r, users, e)
    assert rows(daily, "activity_date", "dau", "new_users", "new_active_users", "existing_active_users", "installs", "uninstalls") == [
        (D(2026, 1, 1), 1, 1, 1, 0, 0, 0),
        (D(2026, 1, 2), 0, 0, 0, 0, 0, 0),
        (D(2026, 1, 3), 2, 1, 1, 1, 1, 1),
    ]
    assert rows(daily, "activity_date", "stickiness") == [(D(2026, 1, 1), 1.0), (D(2026, 1, 2), 0.0), (D(2026, 1, 3), 1.0)]


def test_first_seen_date_is_the_earlier_of_first_activity_and_registration(spark):
    events = [ev("a", at(5)), ev("b", at(5)), ev("c", at(5))]
    profiles = [
        ("a", dt.datetime(2026, 1, 2, 9), None, None, None, None, None),   # registered before first activity
        ("b", dt.datetime(2026, 1, 9, 9), None, None, None, None, None),   # registered after: activity wins
        ("d", dt.datetime(2026, 1, 3, 9), None, None, None, None, None),   # registered, never active
    ]                                                                        # c: no profile
    _, _, users, _, _ = build(spark, events, profiles)
    assert rows(users, "user_id", "first_seen_date") == [
        ("a", D(2026, 1, 2)), ("b", D(2026, 1, 5)), ("c", D(2026, 1, 5)), ("d", D(2026, 1, 3)),
    ]


def test_new_users_count_registrations_without_activity(spark):
    events = [ev("a", at(1)), ev("a", at(3))]
    profiles = [("z", dt.datetime(2026, 1, 2, 9), None, None, None, None, None)]
    e, days, users, rng, cal = build(spark, events, profiles)
    r = G.rolling_active(cal, G.with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = G.engagement_daily(cal, days, r, users, e)
    assert rows(daily, "activity_date", "new_users", "new_active_users") == [
        (D(2026, 1, 1), 1, 1), (D(2026, 1, 2), 1, 0), (D(2026, 1, 3), 0, 0),
    ]


def test_every_lifecycle_category(spark):
    # day1: a, b new. day2: a returning, b dormant, r (registered day 1) resurrecting-not-new.
    # day4: b resurrecting, a and r dormant on day 3.
    events = [ev("a", at(1)), ev("b", at(1)), ev("a", at(2)), ev("r", at(2)), ev("b", at(4))]
    profiles = [("r", dt.datetime(2026, 1, 1, 8), None, None, None, None, None)]
    e, days, users, rng, cal = build(spark, events, profiles)
    life = G.lifecycle_daily(cal, G.with_neighbours(days), users, rng)
    assert rows(life, "activity_date", "new", "returning", "resurrecting", "dormant") == [
        (D(2026, 1, 1), None, None, None, None),   # the range's first date has no lifecycle
        (D(2026, 1, 2), 0, 1, 1, 1),               # a returning, r resurrecting (first seen day 1), b dormant
        (D(2026, 1, 3), 0, 0, 0, 2),               # a and r dormant
        (D(2026, 1, 4), 0, 0, 1, 0),               # b resurrecting
    ]


def test_lifecycle_new_plus_returning_plus_resurrecting_is_dau(spark):
    events = [ev(u, at(d)) for u, ds in {"a": [1, 2, 3, 5], "b": [2, 3], "c": [3, 5, 6], "d": [6]}.items() for d in ds]
    e, days, users, rng, cal = build(spark, events)
    life = G.lifecycle_daily(cal, G.with_neighbours(days), users, rng)
    dau = days.groupBy("activity_date").count()
    joined = life.join(dau, "activity_date").filter(F.col("new").isNotNull())
    assert joined.filter(F.col("new") + F.col("returning") + F.col("resurrecting") != F.col("count")).count() == 0


@pytest.mark.parametrize("birth,expected_age,expected_group", [
    (D(2008, 1, 31), 18, "18-24"),   # 18th birthday on the lake's last date: 18
    (D(2008, 2, 1), 17, "<18"),      # one day short
    (D(2001, 1, 31), 25, "25-34"),
    (D(1961, 2, 1), 64, "55-64"),
    (D(1961, 1, 31), 65, "65+"),
])
def test_age_group_on_the_birthday_boundary(spark, birth, expected_age, expected_group):
    events = [ev("u", at(31))]
    profiles = [("u", None, "F", birth, None, None, None)]
    _, _, users, _, _ = build(spark, events, profiles)
    r = users.collect()[0]
    assert (r["age"], r["age_group"]) == (expected_age, expected_group)


def test_profile_age_used_without_birth_date_and_unknown_without_either(spark):
    events = [ev("a", at(1)), ev("b", at(1)), ev("c", at(1))]
    profiles = [("a", None, None, None, 44, None, None), ("b", None, None, None, None, None, None)]
    _, _, users, _, _ = build(spark, events, profiles)
    assert rows(users, "user_id", "age", "age_group", "gender") == [
        ("a", 44, "35-44", "unknown"), ("b", None, "unknown", "unknown"), ("c", None, "unknown", "unknown"),
    ]


def test_country_from_profile_else_first_event_carrying_one(spark):
    events = [ev("a", at(1), country=None), ev("a", at(2), country="DE"), ev("a", at(3), country="FR"),
              ev("b", at(1), country="ES"), ev("c", at(1))]
    profiles = [("b", None, None, None, None, "PT", None)]
    _, _, users, _, _ = build(spark, events, profiles)
    assert rows(users, "user_id", "country") == [("a", "DE"), ("b", "PT"), ("c", "unknown")]


def test_demographics_as_of_the_last_date(spark):
    events = [ev("a", at(1)), ev("b", at(10, month=2)), ev("c", at(1)), ev("c", at(15, month=2))]
    profiles = [("a", None, "female", None, 30, "FR", None), ("b", None, "female", None, 31, "FR", None)]
    _, _, users, rng, _ = build(spark, events, profiles)
    demo = G.demographics(users, rng, 30)
    # Last date Feb 15: window [Jan 17, Feb 15]. a: old and inactive; b: new and active; c: active, first seen Jan 1.
    assert rows(demo, "country", "gender", "age_group", "users", "active_users_30d", "new_users_30d") == [
        ("FR", "female", "25-34", 2, 1, 1), ("unknown", "unknown", "unknown", 1, 1, 0),
    ]


def test_monthly_new_vs_existing_and_partial_months(spark):
    events = [ev("a", at(20)), ev("a", at(5, month=2)), ev("b", at(6, month=2)), ev("b", at(7, month=2))]
    e, days, users, rng, cal = build(spark, events)
    r = G.rolling_active(cal, G.with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = G.engagement_daily(cal, days, r, users, e)
    monthly = G.engagement_monthly(days, users, daily, rng)
    jan, feb = monthly.orderBy("month").collect()
    assert (jan["mau"], jan["new_users"], jan["new_active_users"], jan["existing_active_users"], jan["is_complete"]) == (1, 1, 1, 0, False)
    assert (feb["mau"], feb["new_users"], feb["new_active_users"], feb["existing_active_users"], feb["is_complete"]) == (2, 1, 1, 1, False)
    assert jan["avg_dau"] == pytest.approx(1 / 12)   # Jan 20..31 inside the range: 12 days, one active
    assert feb["avg_dau"] == pytest.approx(3 / 7)    # Feb 1..7: dau 0,0,0,0,1,1,1
    assert feb["stickiness"] == pytest.approx(3 / 7 / 2)


def test_loyalty_participation_and_outstanding_points(spark):
    events = [ev("a", at(1), event="points_earned", points=100), ev("a", at(2), event="points_redeemed", points=30),
              ev("b", at(2), event="points_earned", points=10), ev("c", at(2))]
    e, days, users, rng, cal = build(spark, events)
    r = G.rolling_active(cal, G.with_neighbours(days), rng, {"wau": 7, "mau": 30})
    daily = G.engagement_daily(cal, days, r, users, e)
    points = G.loyalty_events(e)
    got = G.loyalty_daily(cal, points, daily)
    assert rows(got, "activity_date", "points_earned", "points_redeemed", "earners", "redeemers", "participants",
                "participation_rate", "outstanding_points") == [
        (D(2026, 1, 1), 100, 0, 1, 0, 1, 1.0, 100),
        (D(2026, 1, 2), 10, 30, 1, 1, 2, 2 / 3, 80),
    ]
    bal = G.loyalty_balances(points)
    expected = spark.createDataFrame(
        [("a", 100, 30, 70, D(2026, 1, 1), D(2026, 1, 2)), ("b", 10, 0, 10, D(2026, 1, 2), D(2026, 1, 2))],
        "user_id string, points_earned long, points_redeemed long, balance long, first_loyalty_date date, last_loyalty_date date",
    )
    assert_df_equality(bal, expected, ignore_nullable=True)


def test_user_activity_device_is_the_most_used_with_alphabetical_ties(spark):
    events = [ev("a", at(1, 9), device="web"), ev("a", at(1, 10), device="mobile"), ev("a", at(1, 11), device="mobile"),
              ev("b", at(1, 9), device="web"), ev("b", at(1, 10), device="desktop"),
              ev("c", at(1, 9), device=None)]
    e, days, users, rng, cal = build(spark, events)
    uad = G.user_activity_daily(days, users)
    assert rows(uad, "user_id", "device", "events", "is_new") == [
        ("a", "mobile", 3, True), ("b", "desktop", 2, True), ("c", "unknown", 1, True),
    ]


def test_purchases_count_only_successful_payments(spark):
    events = [ev("a", at(1), event="purchase", status="success", amount=10.0),
              ev("a", at(1, 13), event="purchase", status="failed", amount=99.0)]
    e, days, users, rng, cal = build(spark, events)
    r = days.collect()[0]
    assert (r["purchases"], r["revenue"]) == (1, 10.0)


def test_a_gold_table_is_sorted_in_one_partition_without_a_sampling_job(spark):
    # A global orderBy samples its range boundaries in a Spark job of its own, one per table;
    # `in_order` gives the same rows in the same order in one partition, in one job.
    df = spark.createDataFrame([(3, "c"), (1, "a"), (2, "b"), (1, "z")], "k int, v string").repartition(3)
    scheduler = spark.sparkContext._jsc.sc().dagScheduler()

    def jobs_to_collect(frame):
        before = scheduler.nextJobId()
        rows = [tuple(r) for r in frame.collect()]
        return rows, scheduler.nextJobId() - before

    with tuned(spark, {"spark.sql.adaptive.enabled": "false"}):  # as gold runs (spark.layers.gold)
        ordered, ordered_jobs = jobs_to_collect(df.orderBy("k", "v"))
        rows, jobs = jobs_to_collect(df.transform(G.in_order("k", "v")))
    assert rows == ordered == [(1, "a"), (1, "z"), (2, "b"), (3, "c")]
    assert df.transform(G.in_order("k", "v")).rdd.getNumPartitions() == 1
    assert (jobs, ordered_jobs) == (1, 2)
