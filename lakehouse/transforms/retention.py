"""Gold, retention family: daily and weekly cohort retention (docs/spec/metrics.md, "Retention").

Retention explodes only real activity and uses each user's last active date for the "unbounded"
curve: no users x dates cross join.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from lakehouse.transforms.common import DateRange, as_long, in_order, in_range, ratio


def _cohort_members(users: DataFrame, rng: DateRange) -> DataFrame:
    """Users whose first_seen_date is a date of the range (earlier or later first_seen -> no cohort)."""
    return in_range(users.select("user_id", "first_seen_date", "last_active_date"), rng, "first_seen_date")


def retention_daily(cal: DataFrame, users: DataFrame, days: DataFrame, rng: DateRange,
                    max_day: int = 30) -> DataFrame:
    """Cohort x day_n retention, exact-day and unbounded ("on that day or later").

    Rows: every date of the range is a cohort (an empty one has cohort_size 0 and a null rate);
    day_n runs 0..max_day while cohort_date + day_n <= range end.
    """
    members = _cohort_members(users, rng)
    grid = cal.select(
        F.col("activity_date").alias("cohort_date"),
        F.explode(F.sequence(F.lit(0), F.least(F.lit(max_day), F.datediff(F.lit(rng.end), F.col("activity_date"))))).alias("day_n"),
    )
    size = members.groupBy(F.col("first_seen_date").alias("cohort_date")).agg(F.count(F.lit(1)).alias("cohort_size"))
    # Exact day: only real activity is exploded (one row per member-active-day within max_day).
    exact = (
        days.select("user_id", "activity_date")
        .join(members.select("user_id", "first_seen_date"), "user_id")
        .select(F.col("first_seen_date").alias("cohort_date"),
                F.datediff("activity_date", "first_seen_date").alias("day_n"))
        .filter(F.col("day_n").between(0, max_day))
        .groupBy("cohort_date", "day_n").agg(F.count(F.lit(1)).alias("retained_users"))
    )
    # Unbounded: active on cohort_date + n or later <=> last_active_date >= cohort_date + n.
    # Count members per capped "last offset", then a reverse running sum over day_n.
    last = (
        members.filter(F.col("last_active_date") >= F.col("first_seen_date"))
        .select(F.col("first_seen_date").alias("cohort_date"),
                F.least(F.lit(max_day), F.datediff("last_active_date", "first_seen_date")).alias("day_n"))
        .groupBy("cohort_date", "day_n").agg(F.count(F.lit(1)).alias("_last"))
    )
    tail = Window.partitionBy("cohort_date").orderBy(F.col("day_n").desc()).rowsBetween(Window.unboundedPreceding, 0)
    out = (
        grid.join(size, "cohort_date", "left")
        .join(exact, ["cohort_date", "day_n"], "left")
        .join(last, ["cohort_date", "day_n"], "left")
        .fillna(0, subset=["cohort_size", "retained_users", "_last"])
        .withColumn("retained_users_unbounded", F.sum("_last").over(tail))
    )
    return out.select(
        "cohort_date",
        F.col("day_n").cast("int").alias("day_n"),
        as_long("cohort_size"),
        as_long("retained_users"),
        as_long("retained_users_unbounded"),
        ratio(F.col("retained_users"), F.col("cohort_size")).alias("retention_rate"),
    ).transform(in_order("cohort_date", "day_n"))


def retention_weekly(cal: DataFrame, users: DataFrame, days: DataFrame, rng: DateRange,
                     max_week: int = 12) -> DataFrame:
    """Cohort week (Monday) x week_n retention: retained when active on any day of week n.

    Cohorts are the Monday-weeks that contain a date of the range (members: first_seen_date inside
    the range); week_n runs 0..max_week while its Monday is <= range end.
    """
    monday = lambda c: F.trunc(c, "week")  # noqa: E731 - Spark's week starts on Monday
    members = _cohort_members(users, rng).select("user_id", monday(F.col("first_seen_date")).alias("cohort_week"))
    grid = (
        cal.select(monday(F.col("activity_date")).alias("cohort_week")).distinct()
        .select("cohort_week", F.explode(F.sequence(
            F.lit(0), F.least(F.lit(max_week), F.floor(F.datediff(F.lit(rng.end), F.col("cohort_week")) / 7).cast("int"))
        )).alias("week_n"))
    )
    size = members.groupBy("cohort_week").agg(F.count(F.lit(1)).alias("cohort_size"))
    retained = (
        days.select("user_id", "activity_date")
        .join(members, "user_id")
        .select("user_id", "cohort_week",
                (F.datediff(monday(F.col("activity_date")), F.col("cohort_week")) / 7).cast("int").alias("week_n"))
        .filter(F.col("week_n").between(0, max_week))
        .groupBy("cohort_week", "week_n").agg(F.countDistinct("user_id").alias("retained_users"))
    )
    out = grid.join(size, "cohort_week", "left").join(retained, ["cohort_week", "week_n"], "left")
    return out.select(
        "cohort_week",
        F.col("week_n").cast("int").alias("week_n"),
        as_long("cohort_size"),
        as_long("retained_users"),
        ratio(F.coalesce(F.col("retained_users"), F.lit(0)), F.coalesce(F.col("cohort_size"), F.lit(0))).alias("retention_rate"),
    ).transform(in_order("cohort_week", "week_n"))
