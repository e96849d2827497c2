"""Gold, content family: event counts, page views, hourly activity, quizzes and course progress
(docs/spec/metrics.md, "Content").
"""

from __future__ import annotations

from typing import Sequence

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from lakehouse.transforms.common import DateRange, UNKNOWN, as_long, in_order, in_range, ratio


def event_counts_daily(cal: DataFrame, events: DataFrame, rng: DateRange,
                       names: Sequence[str] | None = None) -> DataFrame:
    """Events and distinct users per date x event name, all valid events (app_uninstall included).

    Zero-filled over every date of the calendar x every event name seen (`names`, by default those
    of `events`; a small set); events dated outside the range (e.g. an uninstall after the last
    active event) are left out.
    """
    counts = in_range(events, rng).groupBy("activity_date", "event").agg(
        F.count(F.lit(1)).alias("events"), F.countDistinct("user_id").alias("users"))
    if names is None:
        grid = cal.crossJoin(F.broadcast(events.select("event").distinct()))
    else:  # each date x each name, generated in place (a join with a frame of names is a broadcast job)
        grid = cal.withColumn("event", F.explode(F.array(*[F.lit(str(n)) for n in sorted(names)]).cast("array<string>")))
    out = grid.join(counts, ["activity_date", "event"], "left")
    return out.select("activity_date", "event", as_long("events"), as_long("users")).transform(in_order("activity_date", "event"))


def page_views_daily(active: DataFrame, rng: DateRange) -> DataFrame:
    """page_view events and distinct viewers per date x page (only pairs that occur; null page -> 'unknown')."""
    views = in_range(active.filter(F.col("event") == "page_view"), rng)
    return views.groupBy("activity_date", F.coalesce(F.col("page"), F.lit(UNKNOWN)).alias("page")).agg(
        F.count(F.lit(1)).cast("long").alias("views"),
        F.countDistinct("user_id").cast("long").alias("users"),
    ).transform(in_order("activity_date", "page"))


def hourly_activity(events: DataFrame) -> DataFrame:
    """Events per event name x local weekday (1 = Monday) x local hour, all valid events."""
    return events.groupBy("event", F.col("day_of_week").cast("int").alias("day_of_week"),
                          F.col("hour").cast("int").alias("hour")).agg(
        F.count(F.lit(1)).cast("long").alias("events")
    ).transform(in_order("event", "day_of_week", "hour"))


def add_hourly_activity(previous: DataFrame, new: DataFrame) -> DataFrame:
    """hourly_activity after new events: counts add up (silver holds every event once)."""
    return previous.unionByName(new).groupBy("event", "day_of_week", "hour").agg(
        F.sum("events").cast("long").alias("events")
    ).transform(in_order("event", "day_of_week", "hour"))


def quiz_daily(active: DataFrame, rng: DateRange) -> DataFrame:
    """quiz_attempt events per date x quiz: attempts, participants, passes, pass rate, mean score % and duration."""
    quiz = in_range(active.filter(F.col("event") == "quiz_attempt"), rng)
    score_pct = F.when((F.col("max_score") > 0) & F.col("score").isNotNull(), F.col("score") / F.col("max_score") * 100.0)
    agg = quiz.groupBy("activity_date", F.coalesce(F.col("quiz_id"), F.lit(UNKNOWN)).alias("quiz_id")).agg(
        F.count(F.lit(1)).alias("attempts"),
        F.countDistinct("user_id").alias("participants"),
        F.sum(F.when(F.col("passed"), 1).otherwise(0)).alias("passes"),
        F.avg(score_pct).alias("avg_score_pct"),
        F.avg("duration_s").alias("avg_duration_s"),
    )
    return agg.select(
        "activity_date", "quiz_id", as_long("attempts"), as_long("participants"), as_long("passes"),
        ratio(F.col("passes"), F.col("attempts")).alias("pass_rate"),
        F.col("avg_score_pct").cast("double").alias("avg_score_pct"),
        F.col("avg_duration_s").cast("double").alias("avg_duration_s"),
    ).transform(in_order("activity_date", "quiz_id"))


def course_progress(active: DataFrame) -> DataFrame:
    """Per course: learners (any course_progress event), completions (reached progress_pct >= 100), rate."""
    prog = active.filter(F.col("event") == "course_progress")
    agg = prog.groupBy(F.coalesce(F.col("course_id"), F.lit(UNKNOWN)).alias("course_id")).agg(
        F.countDistinct("user_id").alias("learners"),
        F.countDistinct(F.when(F.col("progress_pct") >= 100, F.col("user_id"))).alias("completions"),
    )
    return agg.select(
        "course_id", as_long("learners"), as_long("completions"),
        ratio(F.col("completions"), F.col("learners")).alias("completion_rate"),
    ).transform(in_order("course_id"))
