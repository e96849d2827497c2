"""Shared foundations of the gold transforms: dates and timezones, the activity filter, the calendar,
money columns, the user-day frame every family builds on, and the one-partition ordering gold tables end with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window


Transform = Callable[[DataFrame], DataFrame]


def in_order(*cols) -> Transform:
    """A gold table's rows in one partition, sorted by `cols` (how every gold table is written).

    A global `orderBy` is a range shuffle whose boundaries Spark samples in a job of its own, one
    per table; gold tables are small, so one single-partition exchange and a sort of that partition
    give the same rows in the same order without that job.
    """
    return lambda df: df.repartition(1).sortWithinPartitions(*cols)


AGE_GROUPS = ((None, 18, "<18"), (18, 25, "18-24"), (25, 35, "25-34"), (35, 45, "35-44"),
              (45, 55, "45-54"), (55, 65, "55-64"), (65, None, "65+"))


@dataclass(frozen=True)
class DateRange:
    """The lake's range: earliest and latest activity_date of any active event."""

    start: dt.date
    end: dt.date


MONEY = "decimal(38,6)"


def money_sum(amount: Column) -> Column:
    """Sum of money as an exact decimal, returned as double: the total does not depend on the order
    of the rows, so sums of partial sums (incremental runs) equal the sum of everything (a rebuild)."""
    return F.sum(amount.cast(MONEY)).cast("double")


def ratio(num: Column, den: Column) -> Column:
    """num / den as double, null on a zero or null denominator."""
    return F.when(den.isNull() | (den == 0), F.lit(None).cast("double")).otherwise(num.cast("double") / den)


def local_date(ts: Column, timezone: str) -> Column:
    """The calendar date of a UTC instant in the reporting timezone."""
    return F.to_date(F.from_utc_timestamp(ts, timezone))


def age_group(age: Column) -> Column:
    """Whole-year age -> the age groups of metrics.md (null -> unknown)."""
    out = None
    for low, high, label in AGE_GROUPS:
        cond = F.lit(True)
        if low is not None:
            cond = cond & (age >= low)
        if high is not None:
            cond = cond & (age < high)
        out = F.when(cond, F.lit(label)) if out is None else out.when(cond, F.lit(label))
    return F.when(age.isNull(), F.lit("unknown")).otherwise(out)


def age_on(birth_date: Column, as_of: dt.date) -> Column:
    """Whole years between birth_date and `as_of` (a Feb-29 birthday turns on Mar 1)."""
    d = F.lit(as_of)
    before_birthday = (F.month(d) < F.month(birth_date)) | (
        (F.month(d) == F.month(birth_date)) & (F.dayofmonth(d) < F.dayofmonth(birth_date))
    )
    return (F.year(d) - F.year(birth_date) - F.when(before_birthday, 1).otherwise(0)).cast("int")


def local_frame(spark, rows: list, schema) -> DataFrame:
    """A DataFrame of rows the driver holds: `rows` are tuples in the order of `schema` (a DDL
    string such as "s date, e date", or a StructType); naive datetimes are read as UTC.

    Built from an Arrow table, which Spark reads as a local relation in the JVM. A frame built from
    a list of tuples (`spark.createDataFrame(rows, schema)`) is read back through Python workers
    instead: the first such frame of a run started them (about 1 s of a demo run on these 2 cores;
    docs/performance.md "Frames of driver rows and quote-free CSV without a Python worker").
    """
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import DataType, StructType

    struct = schema if isinstance(schema, StructType) else DataType.fromDDL(schema)
    table = pa.Table.from_pylist([dict(zip(struct.names, row)) for row in rows], schema=to_arrow_schema(struct, timezone="UTC"))
    return spark.createDataFrame(table, struct)


def calendar(spark, rng: DateRange, column: str = "activity_date") -> DataFrame:
    """One row per date of the range; no rows when it ends before it starts (Spark's `sequence`
    would count down)."""
    days = [(rng.start, rng.end)] if rng.start <= rng.end else []
    return local_frame(spark, days, "s date, e date").select(F.explode(F.sequence("s", "e")).alias(column))


def with_activity_date(timezone: str) -> Transform:
    """Add `activity_date`, `hour` and `day_of_week` (1 = Monday) in the reporting timezone."""

    def _transform(events: DataFrame) -> DataFrame:
        local = F.from_utc_timestamp("ts", timezone)
        return (
            events.withColumn("activity_date", F.to_date(local))
            .withColumn("hour", F.hour(local))
            .withColumn("day_of_week", ((F.dayofweek(local) + 5) % 7 + 1).cast("int"))
        )

    return _transform


def is_active(excluded_events: tuple[str, ...]) -> Column:
    """True for an active event (any name but the excluded ones; `excluded_events` in the config)."""
    return ~F.col("event").isin(*excluded_events)


def active_only(excluded_events: tuple[str, ...]) -> Transform:
    """Keep active events (every event but the excluded names)."""

    def _transform(events: DataFrame) -> DataFrame:
        return events.filter(is_active(excluded_events))

    return _transform


def date_range(active: DataFrame) -> DateRange | None:
    """The lake's date range, or None when there is no active event."""
    return date_range_and_names(active, ())[0]


def date_range_and_names(events: DataFrame, excluded_events: tuple[str, ...]) -> tuple[DateRange | None, list[str]]:
    """(`date_range` of the events not in `excluded_events`, every event name found, sorted), from
    one aggregation over `events` (with `activity_date`): one Spark job instead of two.

    The names are those of all events, excluded ones included (gold's state remembers them to
    zero-fill a name that first appears later); the range is None when no event is active.
    """
    day = F.when(is_active(excluded_events), F.col("activity_date"))
    row = events.agg(F.min(day).alias("s"), F.max(day).alias("e"),
                     F.sort_array(F.collect_set("event")).alias("names")).collect()[0]
    return (None if row["s"] is None else DateRange(row["s"], row["e"])), list(row["names"])


def user_days(active: DataFrame, sessions_by_day: DataFrame) -> DataFrame:
    """One row per user and active date: counts, money, points and the day's main device."""
    is_purchase = (F.col("event") == "purchase") & (F.col("payment_status") == "success")
    per_device = active.groupBy("user_id", "activity_date", "device").agg(
        F.count(F.lit(1)).alias("events"),
        F.sum(F.when(is_purchase, 1).otherwise(0)).alias("purchases"),
        money_sum(F.when(is_purchase, F.coalesce(F.col("amount"), F.lit(0.0))).otherwise(0.0)).alias("revenue"),
        F.sum(F.when(F.col("event") == "points_earned", F.col("points")).otherwise(0)).alias("points_earned"),
        F.sum(F.when(F.col("event") == "points_redeemed", F.col("points")).otherwise(0)).alias("points_redeemed"),
    )
    days = per_device.groupBy("user_id", "activity_date").agg(
        F.sum("events").alias("events"),
        F.sum("purchases").alias("purchases"),
        money_sum(F.col("revenue")).alias("revenue"),
        F.sum("points_earned").alias("points_earned"),
        F.sum("points_redeemed").alias("points_redeemed"),
        # Most events wins; a tie goes to the alphabetically first device; null devices last.
        F.min(F.struct(F.col("device").isNull().alias("n"), (-F.col("events")).alias("c"), F.col("device").alias("d")))["d"].alias("device"),
    )
    return (
        days.join(sessions_by_day, ["user_id", "activity_date"], "left")
        .withColumn("sessions", F.coalesce("sessions", F.lit(0)).cast("long"))
        .withColumn("device", F.coalesce("device", F.lit("unknown")))
        .withColumn("events", F.col("events").cast("long"))
        .withColumn("purchases", F.col("purchases").cast("long"))
        .withColumn("points_earned", F.col("points_earned").cast("long"))
        .withColumn("points_redeemed", F.col("points_redeemed").cast("long"))
    )


def sessions_per_day(sessions: DataFrame, timezone: str) -> DataFrame:
    """Sessions counted on the date of their first event."""
    return (
        sessions.withColumn("activity_date", local_date(F.col("session_start"), timezone))
        .groupBy("user_id", "activity_date")
        .agg(F.count(F.lit(1)).alias("sessions"))
    )


def with_neighbours(days: DataFrame) -> DataFrame:
    """Add each user-day's previous and next active dates (one window pass)."""
    w = Window.partitionBy("user_id").orderBy("activity_date")
    return days.withColumn("prev_date", F.lag("activity_date").over(w)).withColumn("next_date", F.lead("activity_date").over(w))


def count_by(df: DataFrame, key: str, alias: str, out_key: str = "activity_date") -> DataFrame:
    """Rows per key value, renamed for joining onto a calendar."""
    return df.groupBy(F.col(key).alias(out_key)).agg(F.count(F.lit(1)).cast("long").alias(alias))


UNKNOWN = "unknown"


def is_success(col: str = "payment_status") -> Column:
    """A successful payment (metrics.md: purchases count only payment_status = success)."""
    return F.coalesce(F.col(col) == F.lit("success"), F.lit(False))


def as_long(name: str) -> Column:
    """Column `name` as a long, nulls as 0 (counts after a left join onto a calendar)."""
    return F.coalesce(F.col(name), F.lit(0)).cast("long").alias(name)


def in_range(df: DataFrame, rng: DateRange, col: str = "activity_date") -> DataFrame:
    """The rows whose `col` date lies within `rng` (both ends included)."""
    return df.filter(F.col(col).between(F.lit(rng.start), F.lit(rng.end)))


def json_value(text_col: str, out: str, is_object: str, parse_when: Column | None = None) -> Transform:
    """Add `out`, the text column `text_col` as one JSON value, and `is_object` (boolean).

    `out` is a VARIANT array holding the value as its only element (read it at `$[0]`). It is null
    when the text is not exactly one JSON value (a leading BOM ignored) or when `parse_when` is false.
    `is_object` is true when the first non-blank character is `{`, which is far cheaper than asking
    the VARIANT for its schema. Spark's `parse_json` reads the first value and ignores what follows
    (`{...} junk`, two events glued into one line). Inside `[` and `]` such text breaks the array or
    adds a second element. Text starting with `]` would end the array early, so text that starts
    with `{` must also end with `}`: only `{...}]...}` passes both checks
    (docs/data-quality.md, `not_json`).
    """

    def _transform(df: DataFrame) -> DataFrame:
        parsed = F.expr(f"try_parse_json(concat('[', regexp_replace({text_col}, '^\\uFEFF', ''), ']'))")
        single = F.expr(f"variant_get({out}, '$[1]') IS NULL AND (NOT {is_object} OR endswith("
                        f"TRIM(TRAILING ' \t\r\n' FROM {text_col}), '}}'))")
        return (df.withColumn(out, parsed if parse_when is None else F.when(parse_when, parsed))
                .withColumn(is_object, F.col(text_col).rlike("^\uFEFF?[ \t\r\n]*[{]"))
                .withColumn(out, F.when(single, F.col(out))))

    return _transform

