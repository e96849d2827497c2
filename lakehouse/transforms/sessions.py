"""Sessions family: sessions cut from silver events (`silver.sessions`), and sessions, their lengths and
users per date (`gold.sessions_daily`) (docs/spec/metrics.md, "Sessions").
"""

from __future__ import annotations

from dataclasses import dataclass

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from lakehouse.transforms.common import Transform, as_long, in_order, is_active, local_date, ratio


def sessions_daily(cal: DataFrame, sessions: DataFrame, timezone: str) -> DataFrame:
    """Sessions on the date of their first event: counts, users, total and average seconds (zero-filled).

    `total_session_seconds` is the exact sum of the sessions' `duration_s` (decimal seconds, to the
    microsecond), summed as a decimal and stored as a double (as money is): never cut to whole seconds.
    """
    per_day = (
        sessions.withColumn("activity_date", local_date(F.col("session_start"), timezone))
        .groupBy("activity_date")
        .agg(F.count(F.lit(1)).alias("sessions"),
             F.countDistinct("user_id").alias("users"),
             F.sum(F.col("duration_s").cast("decimal(28,6)")).alias("total_session_seconds"))
    )
    out = cal.join(per_day, "activity_date", "left")
    total = F.coalesce(F.col("total_session_seconds").cast("double"), F.lit(0.0))
    return out.select(
        "activity_date",
        as_long("sessions"),
        as_long("users"),
        total.alias("total_session_seconds"),
        ratio(F.col("total_session_seconds"), F.col("sessions")).alias("avg_session_seconds"),
        ratio(F.col("total_session_seconds"), F.col("users")).alias("avg_time_per_user_seconds"),
    ).transform(in_order("activity_date"))


MICROS = 1_000_000
SECONDS = "decimal(18,6)"  # seconds to the microsecond, summed exactly in any order (like money)


def session_seconds(start: Column, end: Column) -> Column:
    """`end - start` in seconds, exact to the microsecond (a timestamp's precision), as SECONDS.

    Not cut to whole seconds, and not a double: a sum of partial sums (incremental gold) is then
    exactly the sum of everything (a rebuild).
    """
    micros = (F.unix_micros(end) - F.unix_micros(start)).cast("decimal(18,0)")
    return (micros / F.lit(MICROS)).cast(SECONDS)


def sessionize(gap_minutes: int = 30, excluded_events: tuple[str, ...] = ("app_uninstall",)) -> Transform:
    """Active events -> one row per session (client session_id, else a >gap_minutes inactivity split)."""

    def _transform(events: DataFrame) -> DataFrame:
        active = events.filter(is_active(excluded_events)).select("user_id", "session_id", "ts")
        given = active.filter(F.col("session_id").isNotNull()).select(
            "user_id", "session_id", "ts", F.lit(False).alias("is_derived")
        )
        by_user = Window.partitionBy("user_id").orderBy("ts")
        derived = (
            active.filter(F.col("session_id").isNull())
            # Gaps in microseconds, the precision of a timestamp (never cut to whole seconds).
            .withColumn("_gap", F.unix_micros("ts") - F.lag(F.unix_micros("ts")).over(by_user))
            .withColumn("_new", F.when(F.col("_gap").isNull() | (F.col("_gap") > gap_minutes * 60 * MICROS), 1).otherwise(0))
            .withColumn("_n", F.sum("_new").over(by_user.rowsBetween(Window.unboundedPreceding, 0)))
            .withColumn("_start", F.min("ts").over(Window.partitionBy("user_id", "_n")))
            .select(
                "user_id",
                # An identifier, not arithmetic: two derived sessions of a user start more than the
                # gap apart, so the start's whole second tells them apart.
                F.concat(F.lit("derived-"), F.col("user_id"), F.lit("-"), F.unix_seconds("_start").cast("string")).alias("session_id"),
                "ts",
                F.lit(True).alias("is_derived"),
            )
        )
        return (
            given.unionByName(derived)
            .groupBy("user_id", "session_id", "is_derived")
            .agg(F.min("ts").alias("session_start"), F.max("ts").alias("session_end"), F.count(F.lit(1)).alias("events"))
            .withColumn("duration_s", session_seconds(F.col("session_start"), F.col("session_end")))
            .select("user_id", "session_id", "session_start", "session_end", "events", "duration_s", "is_derived")
        )

    return _transform


@dataclass(frozen=True)
class Reach:
    """The sessions a batch of new events can change, and where their events start.

    `clients`: (user_id, session_id) of the client sessions the new events belong to (a client
    session may span any time: it is derived again whole). `since`: (user_id, since) per user with
    new events without a session id: their derived sessions from `since` on are cut again (earlier
    ones end more than the gap before any new event, so they cannot change).
    """

    clients: DataFrame
    since: DataFrame


def new_events_reach(gap_minutes: int = 30, excluded_events: tuple[str, ...] = ("app_uninstall",)):
    """(new events, sessions before them) -> `Reach`: what `sessionize` must cut again (docs/incremental.md).

    A new event without a session id at `t0` (the user's earliest such) joins the derived session
    that ends at most `gap_minutes` before it, or any later one; so the user's derived sessions are
    cut again from the earliest of `t0` and the start of the first derived session ending at or
    after `t0 - gap`. Excluded events (`excluded_events`) reach nothing. Both frames are small (one
    row per client session or user of the batch); `sessions` is silver.sessions as it was.
    """
    gap = gap_minutes * 60 * MICROS

    def _reach(new: DataFrame, sessions: DataFrame) -> Reach:
        active = new.filter(is_active(excluded_events))
        clients = active.filter(F.col("session_id").isNotNull()).select("user_id", "session_id").distinct()
        firsts = active.filter(F.col("session_id").isNull()).groupBy("user_id").agg(F.min("ts").alias("_t0"))
        near = (sessions.filter(F.col("is_derived")).join(F.broadcast(firsts), "user_id")
                .filter(F.unix_micros("session_end") >= F.unix_micros("_t0") - gap)
                .groupBy("user_id").agg(F.min("session_start").alias("_first")))
        since = firsts.join(near, "user_id", "left").select("user_id", F.least("_t0", "_first").alias("since"))
        return Reach(clients, since)

    return _reach


def reached_events(reach: Reach) -> Transform:
    """Events -> the events of the sessions `reach` names (all of each client session; a user's
    events without a session id from their `since` on), to be cut again by `sessionize`."""

    def _transform(events: DataFrame) -> DataFrame:
        given = events.filter(F.col("session_id").isNotNull()).join(
            F.broadcast(reach.clients), ["user_id", "session_id"], "left_semi")
        derived = (events.filter(F.col("session_id").isNull()).join(F.broadcast(reach.since), "user_id")
                   .filter(F.col("ts") >= F.col("since")).drop("since"))
        return given.unionByName(derived)

    return _transform


def outside_reach(reach: Reach) -> Transform:
    """Sessions -> those `reach` does not name (kept as they are; `sessionize` of `reached_events`
    replaces the others)."""

    def _transform(sessions: DataFrame) -> DataFrame:
        clients = reach.clients.withColumn("_client", F.lit(True))
        reached = (~F.col("is_derived") & F.coalesce(F.col("_client"), F.lit(False))) | (
            F.col("is_derived") & F.coalesce(F.col("session_start") >= F.col("since"), F.lit(False)))
        # No broadcast hints (each broadcast is a Spark job of its own, one per query): the window is
        # usually a day or two of sessions, and the reach is read back from its checkpoint. A late
        # event of an old client session widens the window; the join then sorts it instead (seconds
        # at a few million sessions). Spark still broadcasts small sides by its own threshold.
        return (sessions.join(clients, ["user_id", "session_id"], "left")
                .join(reach.since, "user_id", "left")
                .filter(~reached).select(*sessions.columns))

    return _transform
