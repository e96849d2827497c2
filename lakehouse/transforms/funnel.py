"""Gold, funnel family: ordered funnel steps within a window, per entry and per entry date and device
(docs/spec/metrics.md, "Funnel"). Steps are matched with one running window per step; no UDFs.
"""

from __future__ import annotations

from typing import Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from lakehouse.transforms.common import UNKNOWN, in_order, is_success


DEFAULT_FUNNEL_STEPS = ("item_view", "add_to_cart", "checkout_start", "purchase")


FUNNEL_SCHEMA = ("activity_date date, device string, step_index int, step_name string, users long, "
                 "is_window_complete boolean")


FUNNEL_ENTRIES_SCHEMA = "activity_date date, user_id string, device string, reached int, is_window_complete boolean"


def window_complete(window_days: int, last_date) -> Column:
    """An entry dated `activity_date` has its conversion window closed inside the lake:
    activity_date + window_days <= the lake's last date (metrics.md, Funnel)."""
    return F.date_add(F.col("activity_date"), int(window_days)) <= F.lit(last_date)


def _step_events(active: DataFrame, step: str) -> DataFrame:
    """The events that count as a step; the purchase step counts successful purchases only."""
    cond = F.col("event") == F.lit(step)
    if step == "purchase":
        cond = cond & is_success()
    return active.filter(cond)


def funnel_entries(active: DataFrame, steps: Sequence[str] = DEFAULT_FUNNEL_STEPS, window_days: int = 14) -> DataFrame:
    """One row per user and entry date: entry time/device and `reached` (number of steps completed, >= 1).

    Greedy ordered matching: for each step the earliest event at or after the previous step's time
    (equal timestamps count) and at or before entry + window. One running window per step, scanning
    each user's markers and step events in descending time: the last step event seen before a marker
    is the earliest one at or after it (events sort before markers on equal timestamps).
    """
    steps = list(steps)
    first = (
        _step_events(active, steps[0])
        .groupBy("user_id", "activity_date")
        .agg(F.min(F.struct(F.col("ts"), F.col("event_id"), F.col("device"))).alias("_e"))
        .select("user_id", "activity_date",
                F.coalesce(F.col("_e.device"), F.lit(UNKNOWN)).alias("device"),
                F.col("_e.ts").alias("t0"))
        .withColumn("deadline", F.col("t0") + F.make_dt_interval(days=F.lit(window_days)))
        .withColumn("t", F.col("t0"))
        .withColumn("reached", F.lit(1))
    )
    cur = first
    cols = ["user_id", "activity_date", "device", "t0", "deadline", "t", "reached"]
    for k, step in enumerate(steps[1:], start=2):
        markers = cur.select(*cols, F.lit(0).alias("_kind"),
                             F.when(F.col("reached") == k - 1, F.col("t")).alias("_ts"))
        evs = _step_events(active, step).select(
            "user_id", *[F.lit(None).cast(t).alias(c) for c, t in
                         (("activity_date", "date"), ("device", "string"), ("t0", "timestamp"),
                          ("deadline", "timestamp"), ("t", "timestamp"), ("reached", "int"))],
            F.lit(1).alias("_kind"), F.col("ts").alias("_ts"),
        )
        w = (Window.partitionBy("user_id")
             .orderBy(F.col("_ts").desc_nulls_last(), F.col("_kind").desc())
             .rowsBetween(Window.unboundedPreceding, 0))
        nxt = F.last(F.when(F.col("_kind") == 1, F.col("_ts")), ignorenulls=True).over(w)
        ok = (F.col("reached") == k - 1) & F.col("_next").isNotNull() & (F.col("_next") <= F.col("deadline"))
        cur = (
            markers.unionByName(evs)
            .withColumn("_next", nxt)
            .filter(F.col("_kind") == 0)
            .select("user_id", "activity_date", "device", "t0", "deadline",
                    F.when(ok, F.col("_next")).otherwise(F.col("t")).alias("t"),
                    F.when(ok, F.lit(k)).otherwise(F.col("reached")).alias("reached"))
        )
    return cur.select("user_id", "activity_date", "device", "t0", F.col("reached").cast("int").alias("reached"))


def funnel_user_entries(active: DataFrame, last_date, steps: Sequence[str] = DEFAULT_FUNNEL_STEPS,
                        window_days: int = 14) -> DataFrame:
    """gold.funnel_entries: one row per user and entry date, with the entry device, the number of
    steps the entry reached and whether its window is closed at `last_date` (the lake's last date)."""
    return funnel_entries(active, steps, window_days).select(
        "activity_date", "user_id", "device", "reached",
        window_complete(window_days, last_date).alias("is_window_complete"),
    ).transform(in_order("activity_date", "user_id"))


def funnel_daily(active: DataFrame, last_date, steps: Sequence[str] = DEFAULT_FUNNEL_STEPS,
                 window_days: int = 14, entries: DataFrame | None = None) -> DataFrame:
    """Entries per entry date x entry device x step (1-based), for the (date, device) pairs with entries.

    A funnel whose later steps never occur gives zeros; one whose first step never occurs gives no rows.
    `is_window_complete`: the date's entries have their whole window inside the lake, whose last
    date is `last_date` (the range's end `E`, in a full build and in an incremental one alike).
    `entries`: the entries of `active` when already computed (`funnel_user_entries`), to reuse them.
    """
    steps = list(steps)
    if entries is None:
        entries = funnel_entries(active, steps, window_days)
    per_pair = entries.groupBy("activity_date", "device").agg(
        *[F.sum(F.when(F.col("reached") >= k, 1).otherwise(0)).alias(f"_s{k}") for k in range(1, len(steps) + 1)]
    )
    rows = F.array(*[
        F.struct(F.lit(k).cast("int").alias("step_index"), F.lit(name).alias("step_name"),
                 F.coalesce(F.col(f"_s{k}"), F.lit(0)).cast("long").alias("users"))
        for k, name in enumerate(steps, start=1)
    ])
    return (
        per_pair.select("activity_date", "device", F.explode(rows).alias("_r"))
        .select("activity_date", "device", "_r.step_index", "_r.step_name", "_r.users",
                window_complete(window_days, last_date).alias("is_window_complete"))
        .transform(in_order("activity_date", "device", "step_index"))
    )
