"""Gold foundations (transforms/common.py): the calendar, local dates, the user-day frame, one-partition order."""

from __future__ import annotations

import datetime as dt

from lakehouse.session import tuned
from lakehouse.transforms.common import DateRange, calendar, date_range, date_range_and_names, in_order, local_frame, with_activity_date

from gold_rows import D, EVENT_SCHEMA, at, build, ev


def test_calendar_has_one_row_per_date_and_none_when_the_range_ends_before_it_starts(spark):
    # An incremental run whose first changed date is after the range's end rebuilds no date.
    rows = lambda a, b: [r.activity_date for r in calendar(spark, DateRange(a, b)).collect()]  # noqa: E731
    assert rows(dt.date(2024, 2, 28), dt.date(2024, 3, 1)) == [dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]
    assert rows(dt.date(2024, 3, 1), dt.date(2024, 3, 1)) == [dt.date(2024, 3, 1)]
    assert rows(dt.date(2024, 3, 2), dt.date(2024, 3, 1)) == []


def test_a_frame_of_driver_rows_keeps_its_schema_and_is_read_without_python(spark):
    # Rows from a list of tuples are read back by Python workers (a PythonRDD scan: "ExistingRDD");
    # an Arrow-built frame is a local relation the JVM reads alone. Naive datetimes are UTC.
    df = local_frame(spark, [(dt.date(2026, 1, 1), "a", dt.datetime(2026, 1, 1, 12), [1, 2]), (None, None, None, None)],
                     "d date, s string, t timestamp, xs array<int>")
    assert df.schema.simpleString() == "struct<d:date,s:string,t:timestamp,xs:array<int>>"
    assert [(r.d, r.s, r.xs) for r in df.collect()] == [(dt.date(2026, 1, 1), "a", [1, 2]), (None, None, None)]
    assert [r[0] for r in df.selectExpr("date_format(t, 'yyyy-MM-dd HH:mm')").collect()] == ["2026-01-01 12:00", None]
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "LocalTableScan" in plan and "ExistingRDD" not in plan
    assert local_frame(spark, [], "d date").count() == 0
    listed = spark.createDataFrame([(1,)], "n int")._jdf.queryExecution().executedPlan().toString()
    assert "ExistingRDD" in listed   # what the check above tells apart


def test_the_range_spans_active_events_only_and_the_names_include_excluded_ones(spark):
    # gold's state keeps every name (a name first seen later is zero-filled on earlier dates); the
    # range is the active events' (an excluded event on the last day does not extend it).
    events = [ev("u1", at(1), event="app_uninstall"), ev("u1", at(2)), ev("u2", at(3), event="purchase"),
              ev("u2", at(5), event="app_uninstall")]
    e = spark.createDataFrame(events, EVENT_SCHEMA).transform(with_activity_date("UTC"))
    assert date_range_and_names(e, ("app_uninstall",)) == (DateRange(D(2026, 1, 2), D(2026, 1, 3)),
                                                          ["app_uninstall", "page_view", "purchase"])
    assert date_range(e) == DateRange(D(2026, 1, 1), D(2026, 1, 5))  # nothing excluded
    only_excluded = e.filter("event = 'app_uninstall'")
    assert date_range_and_names(only_excluded, ("app_uninstall",)) == (None, ["app_uninstall"])


def test_activity_date_follows_the_reporting_timezone(spark):
    # 23:30 UTC on Jan 1 is already Jan 2 in Tokyo and still Jan 1 in New York.
    events = [ev("u1", dt.datetime(2026, 1, 1, 23, 30)), ev("u2", dt.datetime(2026, 1, 2, 3, 0))]
    for tz, expected in [("UTC", [D(2026, 1, 1), D(2026, 1, 2)]),
                         ("Asia/Tokyo", [D(2026, 1, 2), D(2026, 1, 2)]),
                         ("America/New_York", [D(2026, 1, 1), D(2026, 1, 1)])]:
        e = spark.createDataFrame(events, EVENT_SCHEMA).transform(with_activity_date(tz))
        assert [r["activity_date"] for r in e.orderBy("user_id").collect()] == expected, tz


def test_hour_and_weekday_are_local_with_monday_as_1(spark):
    e = spark.createDataFrame([ev("u1", dt.datetime(2026, 1, 4, 23, 30))], EVENT_SCHEMA)  # Sunday 23:30 UTC
    r = e.transform(with_activity_date("Europe/Paris")).collect()[0]                     # Monday 00:30 in Paris
    assert (r["day_of_week"], r["hour"]) == (1, 0)


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
        rows, jobs = jobs_to_collect(df.transform(in_order("k", "v")))
    assert rows == ordered == [(1, "a"), (1, "z"), (2, "b"), (3, "c")]
    assert df.transform(in_order("k", "v")).rdd.getNumPartitions() == 1
    assert (jobs, ordered_jobs) == (1, 2)
