"""Gold, engagement family: DAU/WAU/MAU, stickiness and new users per date and per month
(docs/spec/metrics.md, "Engagement").

Rolling distinct counts (WAU/MAU) avoid range joins: each user-day opens an interval of
coverage that is cut at the user's next active day, so intervals never overlap; +1/-1 deltas
per date and a running sum over the (small) calendar give exact distinct counts.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from lakehouse.transforms.common import DateRange, count_by, in_order, ratio


def rolling_active(cal: DataFrame, neighbours: DataFrame, rng: DateRange, windows: dict[str, int]) -> DataFrame:
    """Distinct users active in [d-n+1, d] for each named window n, per date (no range join)."""
    deltas = []
    for name, n in windows.items():
        end = F.least(F.date_add("activity_date", n - 1), F.date_sub(F.coalesce("next_date", F.lit(rng.end + dt.timedelta(days=n))), 1))
        deltas.append(F.struct(F.col("activity_date").alias("d"), F.lit(name).alias("w"), F.lit(1).alias("x")))
        deltas.append(F.struct(F.date_add(end, 1).alias("d"), F.lit(name).alias("w"), F.lit(-1).alias("x")))
    exploded = neighbours.select(F.explode(F.array(*deltas)).alias("e")).select("e.*")
    per_date = (
        exploded.filter(F.col("d") <= F.lit(rng.end))
        .groupBy(F.col("d").alias("activity_date")).pivot("w", list(windows)).agg(F.sum("x"))
    )
    running = Window.orderBy("activity_date").rowsBetween(Window.unboundedPreceding, 0)
    return cal.join(per_date, "activity_date", "left").select(
        "activity_date",
        *[F.sum(F.coalesce(F.col(name), F.lit(0))).over(running).cast("long").alias(name) for name in windows],
    )


def engagement_daily(cal: DataFrame, days: DataFrame, rolling: DataFrame, users: DataFrame,
                     all_events: DataFrame) -> DataFrame:
    """DAU/WAU/MAU, stickiness, new vs existing, installs and uninstalls per date."""
    dau = count_by(days, "activity_date", "dau")
    new_users = count_by(users.filter(F.col("first_seen_date").isNotNull()), "first_seen_date", "new_users")
    new_active = count_by(
        days.join(users.select("user_id", "first_seen_date"), "user_id").filter(F.col("activity_date") == F.col("first_seen_date")),
        "activity_date", "new_active_users",
    )
    installs = (
        all_events.filter(F.col("event").isin("app_install", "app_uninstall"))
        .groupBy("activity_date")
        .agg(
            F.countDistinct(F.when(F.col("event") == "app_install", F.col("user_id"))).alias("installs"),
            F.countDistinct(F.when(F.col("event") == "app_uninstall", F.col("user_id"))).alias("uninstalls"),
        )
    )
    out = cal
    for part in (dau, rolling, new_users, new_active, installs):
        out = out.join(part, "activity_date", "left")
    counts = ["dau", "wau", "mau", "new_users", "new_active_users", "installs", "uninstalls"]
    out = out.fillna(0, subset=counts)
    return out.select(
        "activity_date",
        *[F.col(c).cast("long").alias(c) for c in ("dau", "wau", "mau")],
        ratio(F.col("dau"), F.col("mau")).alias("stickiness"),
        F.col("new_users").cast("long").alias("new_users"),
        F.col("new_active_users").cast("long").alias("new_active_users"),
        (F.col("dau") - F.col("new_active_users")).cast("long").alias("existing_active_users"),
        F.col("installs").cast("long").alias("installs"),
        F.col("uninstalls").cast("long").alias("uninstalls"),
    ).transform(in_order("activity_date"))


def engagement_monthly(days: DataFrame, users: DataFrame, daily: DataFrame, rng: DateRange) -> DataFrame:
    """Calendar-month MAU, new vs existing, average DAU and stickiness; partial months flagged."""
    month = F.trunc("activity_date", "month")
    mau = days.groupBy(month.alias("month")).agg(F.countDistinct("user_id").alias("mau"))
    first_month = users.filter(F.col("first_seen_date").isNotNull()).select("user_id", F.trunc("first_seen_date", "month").alias("first_month"))
    new_users = first_month.groupBy(F.col("first_month").alias("month")).agg(F.count(F.lit(1)).alias("new_users"))
    new_active = (
        days.select("user_id", month.alias("month")).distinct()
        .join(first_month, "user_id")
        .filter(F.col("month") == F.col("first_month"))
        .groupBy("month").agg(F.count(F.lit(1)).alias("new_active_users"))
    )
    avg = daily.groupBy(F.trunc("activity_date", "month").alias("month")).agg(F.avg("dau").alias("avg_dau"))
    last_day = F.last_day("month")
    out = (
        avg.join(mau, "month", "left").join(new_users, "month", "left").join(new_active, "month", "left")
        .fillna(0, subset=["mau", "new_users", "new_active_users"])
    )
    return out.select(
        "month",
        F.col("mau").cast("long").alias("mau"),
        F.col("new_users").cast("long").alias("new_users"),
        F.col("new_active_users").cast("long").alias("new_active_users"),
        (F.col("mau") - F.col("new_active_users")).cast("long").alias("existing_active_users"),
        F.col("avg_dau").cast("double").alias("avg_dau"),
        ratio(F.col("avg_dau"), F.col("mau")).alias("stickiness"),
        ((F.col("month") >= F.lit(rng.start)) & (last_day <= F.lit(rng.end))).alias("is_complete"),
    ).transform(in_order("month"))
