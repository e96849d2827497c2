"""Gold, demographics family: active users by country, gender and age group over a trailing window
(docs/spec/metrics.md, "Demographics").
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from lakehouse.transforms.common import DateRange, in_order


def demographics(users: DataFrame, rng: DateRange, window_days: int = 30) -> DataFrame:
    """Users, 30-day active and 30-day new users per gender x age group x country, as of the range end."""
    since = F.lit(rng.end - dt.timedelta(days=window_days - 1))
    until = F.lit(rng.end)
    return users.groupBy("gender", "age_group", "country").agg(
        F.count(F.lit(1)).cast("long").alias("users"),
        F.sum(F.when(F.col("last_active_date") >= since, 1).otherwise(0)).cast("long").alias("active_users_30d"),
        F.sum(F.when(F.col("first_seen_date").between(since, until), 1).otherwise(0)).cast("long").alias("new_users_30d"),
    ).transform(in_order("gender", "age_group", "country"))
