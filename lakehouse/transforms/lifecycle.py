"""Gold, lifecycle family: new, returning, resurrected and dormant users per date
(docs/spec/metrics.md, "Lifecycle").
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from lakehouse.transforms.common import DateRange, in_order


def lifecycle_daily(cal: DataFrame, neighbours: DataFrame, users: DataFrame, rng: DateRange) -> DataFrame:
    """new / returning / resurrecting / dormant per date; null on the range's first date."""
    firsts = users.select("user_id", "first_seen_date")
    d = neighbours.join(firsts, "user_id")
    is_new = F.col("activity_date") == F.col("first_seen_date")
    was_yesterday = F.col("prev_date") == F.date_sub("activity_date", 1)
    status = (
        F.when(is_new, F.lit("new"))
        .when(was_yesterday, F.lit("returning"))
        .otherwise(F.lit("resurrecting"))
    )
    active_counts = d.withColumn("_s", status).groupBy("activity_date").pivot("_s", ["new", "returning", "resurrecting"]).count()
    dormant = (
        d.filter(F.col("next_date").isNull() | (F.col("next_date") > F.date_add("activity_date", 1)))
        .select(F.date_add("activity_date", 1).alias("activity_date"))
        .filter(F.col("activity_date") <= F.lit(rng.end))
        .groupBy("activity_date").agg(F.count(F.lit(1)).alias("dormant"))
    )
    out = cal.join(active_counts, "activity_date", "left").join(dormant, "activity_date", "left")
    first = F.col("activity_date") == F.lit(rng.start)
    return out.select(
        "activity_date",
        *[F.when(first, F.lit(None)).otherwise(F.coalesce(F.col(c), F.lit(0))).cast("long").alias(c)
          for c in ("new", "returning", "resurrecting", "dormant")],
    ).transform(in_order("activity_date"))
