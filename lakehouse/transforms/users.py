"""Gold, users family: the user dimension (first-seen date, demographics, country), users carried
from a previous run, `gold.users` and `gold.user_activity_daily` (docs/spec/metrics.md, "Users").
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from lakehouse.transforms.common import DateRange, Transform, age_group, age_on, local_date, money_sum


def first_event_country(events: DataFrame) -> DataFrame:
    """Each user's country from their first event that carries one."""
    return (
        events.filter(F.col("country").isNotNull())
        .groupBy("user_id")
        .agg(F.min_by("country", F.struct("ts", "event_id")).alias("event_country"))
    )


def user_dimension(days: DataFrame, profiles: DataFrame, event_country: DataFrame,
                   rng: DateRange, timezone: str) -> DataFrame:
    """Every known user (profiles and event users) with first_seen_date and demographics as of the range end."""
    activity = days.groupBy("user_id").agg(
        F.min("activity_date").alias("first_active_date"),
        F.max("activity_date").alias("last_active_date"),
        F.count(F.lit(1)).alias("active_days"),
        F.sum("events").alias("events"),
        F.sum("purchases").alias("orders"),
        money_sum(F.col("revenue")).alias("revenue"),
    )
    prof = profiles.select(
        "user_id", "gender", "birth_date", F.col("age").alias("profile_age"),
        F.col("country").alias("profile_country"), "signup_channel",
        local_date(F.col("registered_at"), timezone).alias("registered_date"),
    )
    users = (
        activity.join(prof, "user_id", "full")
        .join(event_country, "user_id", "left")
        .withColumn("first_seen_date", F.least("first_active_date", "registered_date"))
        .withColumn("gender", F.coalesce("gender", F.lit("unknown")))
        .transform(with_age(rng))
        .withColumn("country", F.coalesce(F.upper("profile_country"), F.upper("event_country"), F.lit("unknown")))
    )
    return users.select(
        "user_id", "first_seen_date", "last_active_date", "gender", "age", "age_group", "country",
        "signup_channel",
        F.coalesce("active_days", F.lit(0)).cast("long").alias("active_days"),
        F.coalesce("events", F.lit(0)).cast("long").alias("events"),
        F.coalesce("orders", F.lit(0)).cast("long").alias("orders"),
        F.coalesce("revenue", F.lit(0.0)).cast("double").alias("revenue"),
    )


def with_age(rng: DateRange) -> Transform:
    """Add `age` (from birth_date as of the range end, else the profile's age) and `age_group`."""

    def _transform(users: DataFrame) -> DataFrame:
        age = F.when(F.col("birth_date").isNotNull(), age_on(F.col("birth_date"), rng.end)).otherwise(F.col("profile_age"))
        return users.withColumn("age", age).withColumn("age_group", age_group(F.col("age")))

    return _transform


USER_COLUMNS = ("user_id", "first_seen_date", "last_active_date", "gender", "age", "age_group", "country",
                "signup_channel", "active_days", "events", "orders", "revenue")


def carried_users(previous: DataFrame, profiles: DataFrame, rng: DateRange) -> DataFrame:
    """Users untouched since the last gold run: their gold.users row, with the age moved to the range end.

    Nothing about them changed but the date the age is taken on, so this equals `user_dimension`.
    """
    ages = profiles.select("user_id", "birth_date", F.col("age").alias("profile_age"))
    return (
        previous.drop("age", "age_group").join(ages, "user_id", "left")
        .transform(with_age(rng))
        .select(*USER_COLUMNS)
    )


def user_activity_daily(days: DataFrame, users: DataFrame) -> DataFrame:
    """One row per user and active date, with the user's attributes for filtering."""
    dims = users.select("user_id", "first_seen_date", "country", "gender", "age_group")
    return days.join(dims, "user_id", "left").select(
        "activity_date", "user_id",
        (F.col("activity_date") == F.col("first_seen_date")).alias("is_new"),
        "events", "sessions", "purchases",
        F.col("revenue").cast("double").alias("revenue"),
        "points_earned", "points_redeemed", "device", "country", "gender", "age_group",
    )


def users_table(users: DataFrame, balances: DataFrame) -> DataFrame:
    """gold.users without segment/cluster (those come from the segmentation step)."""
    return users.join(balances.select("user_id", F.col("balance").alias("points_balance")), "user_id", "left").select(
        "user_id", "first_seen_date", "last_active_date", "gender", "age", "age_group", "country",
        "signup_channel", "active_days", "events", "orders", "revenue",
        F.coalesce("points_balance", F.lit(0)).cast("long").alias("points_balance"),
    )
