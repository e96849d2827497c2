"""Gold, loyalty family: points earned and redeemed per date, outstanding points, and each user's
balance (docs/spec/metrics.md, "Loyalty").
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from lakehouse.transforms.common import in_order, ratio


def loyalty_events(events: DataFrame) -> DataFrame:
    """Valid points events with the signed fields used by the loyalty tables."""
    return events.filter(F.col("event").isin("points_earned", "points_redeemed")).select(
        "user_id", "activity_date",
        F.when(F.col("event") == "points_earned", F.col("points")).otherwise(0).alias("earned"),
        F.when(F.col("event") == "points_redeemed", F.col("points")).otherwise(0).alias("redeemed"),
        "event",
    )


def loyalty_daily(cal: DataFrame, points: DataFrame, daily: DataFrame, opening: int | None = None) -> DataFrame:
    """Points earned and redeemed, earners, redeemers, participation and the outstanding balance per date.

    `opening` is the balance before the calendar's first date; by default it is summed from `points`.
    """
    per_day = points.groupBy("activity_date").agg(
        F.sum("earned").alias("points_earned"),
        F.sum("redeemed").alias("points_redeemed"),
        F.countDistinct(F.when(F.col("event") == "points_earned", F.col("user_id"))).alias("earners"),
        F.countDistinct(F.when(F.col("event") == "points_redeemed", F.col("user_id"))).alias("redeemers"),
        F.countDistinct("user_id").alias("participants"),
    )
    running = Window.orderBy("activity_date").rowsBetween(Window.unboundedPreceding, 0)
    out = (
        cal.join(per_day, "activity_date", "left")
        .join(daily.select("activity_date", "dau"), "activity_date", "left")
        .fillna(0, subset=["points_earned", "points_redeemed", "earners", "redeemers", "participants", "dau"])
    )
    if opening is None:
        before = points.join(cal.agg(F.min("activity_date").alias("s")), F.col("activity_date") < F.col("s")).agg(
            F.coalesce(F.sum(F.col("earned") - F.col("redeemed")), F.lit(0)).alias("opening")
        )
        out = out.crossJoin(before)
    else:  # a literal: no one-row frame to join (each join of one is a broadcast, a Spark job of its own)
        out = out.withColumn("opening", F.lit(int(opening)).cast("long"))
    return out.select(
        "activity_date",
        *[F.col(c).cast("long").alias(c) for c in ("points_earned", "points_redeemed", "earners", "redeemers", "participants")],
        ratio(F.col("participants"), F.col("dau")).alias("participation_rate"),
        (F.col("opening") + F.sum(F.col("points_earned") - F.col("points_redeemed")).over(running)).cast("long").alias("outstanding_points"),
    ).transform(in_order("activity_date"))


def loyalty_balances(points: DataFrame) -> DataFrame:
    """Per user: points earned, redeemed, balance and first/last loyalty dates."""
    return points.groupBy("user_id").agg(
        F.sum("earned").cast("long").alias("points_earned"),
        F.sum("redeemed").cast("long").alias("points_redeemed"),
        (F.sum("earned") - F.sum("redeemed")).cast("long").alias("balance"),
        F.min("activity_date").alias("first_loyalty_date"),
        F.max("activity_date").alias("last_loyalty_date"),
    ).transform(in_order("user_id"))


def add_loyalty_balances(previous: DataFrame, new: DataFrame) -> DataFrame:
    """Balances after new points events: sums add up and first/last dates widen (new events are new)."""
    both = previous.unionByName(new)
    return both.groupBy("user_id").agg(
        F.sum("points_earned").cast("long").alias("points_earned"),
        F.sum("points_redeemed").cast("long").alias("points_redeemed"),
        F.sum("balance").cast("long").alias("balance"),
        F.min("first_loyalty_date").alias("first_loyalty_date"),
        F.max("last_loyalty_date").alias("last_loyalty_date"),
    ).transform(in_order("user_id"))
