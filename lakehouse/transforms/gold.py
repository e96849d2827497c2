"""Gold: the metrics of metrics.md as pure DataFrame functions.

Rolling distinct counts (WAU/MAU) avoid range joins: each user-day opens an interval of
coverage that is cut at the user's next active day, so intervals never overlap; +1/-1 deltas
per date and a running sum over the (small) calendar give exact distinct counts.
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


# ---------------------------------------------------------------- column helpers

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


def calendar(spark, rng: DateRange, column: str = "activity_date") -> DataFrame:
    """One row per date of the range; no rows when it ends before it starts (Spark's `sequence`
    would count down)."""
    days = [(rng.start, rng.end)] if rng.start <= rng.end else []
    return spark.createDataFrame(days, "s date, e date").select(F.explode(F.sequence("s", "e")).alias(column))


# ---------------------------------------------------------------- preparation

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


def active_only(excluded_events: tuple[str, ...]) -> Transform:
    """Keep active events (every event but the excluded names)."""

    def _transform(events: DataFrame) -> DataFrame:
        return events.filter(~F.col("event").isin(*excluded_events))

    return _transform


def to_reporting_currency(rates: DataFrame, reporting: str) -> Transform:
    """Purchases' amounts in the reporting currency (metrics.md "Purchases and revenue").

    `rates` holds one row per (activity_date, currency) with `rate` = units of the reporting currency
    per unit of `currency` (lakehouse.currency.rates_frame); it is small and broadcast. Adds
    `original_amount` (the amount as sent), `currency` (upper-cased and trimmed; the reporting
    currency when missing or blank) and `converted` (a rate was found); `amount` becomes the amount
    in the reporting currency, null when the currency has no rate on that date, so a sum of
    `amount` leaves such purchases out. Only purchases are looked up; other events keep a null
    currency. The result depends only on each event's own date and currency.
    """

    def _transform(events: DataFrame) -> DataFrame:
        code = F.upper(F.trim(F.col("currency")))
        code = F.when(code.isNull() | (code == ""), F.lit(reporting.upper())).otherwise(code)
        keyed = (events.withColumn("currency", F.when(F.col("event") == "purchase", code))
                 .withColumn("original_amount", F.col("amount")))
        r = F.broadcast(rates.select("activity_date", "currency", F.col("rate").alias("_rate")))
        return (
            keyed.join(r, ["activity_date", "currency"], "left")
            .withColumn("converted", F.col("_rate").isNotNull())
            .withColumn("amount", (F.col("original_amount") * F.col("_rate")).cast("double"))
            .drop("_rate")
        )

    return _transform


def date_range(active: DataFrame) -> DateRange | None:
    """The lake's date range, or None when there is no active event."""
    row = active.agg(F.min("activity_date").alias("s"), F.max("activity_date").alias("e")).collect()[0]
    return None if row["s"] is None else DateRange(row["s"], row["e"])


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


# ---------------------------------------------------------------- engagement

def with_neighbours(days: DataFrame) -> DataFrame:
    """Add each user-day's previous and next active dates (one window pass)."""
    w = Window.partitionBy("user_id").orderBy("activity_date")
    return days.withColumn("prev_date", F.lag("activity_date").over(w)).withColumn("next_date", F.lead("activity_date").over(w))


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


def _count_by(df: DataFrame, key: str, alias: str, out_key: str = "activity_date") -> DataFrame:
    """Rows per key value, renamed for joining onto a calendar."""
    return df.groupBy(F.col(key).alias(out_key)).agg(F.count(F.lit(1)).cast("long").alias(alias))


def engagement_daily(cal: DataFrame, days: DataFrame, rolling: DataFrame, users: DataFrame,
                     all_events: DataFrame) -> DataFrame:
    """DAU/WAU/MAU, stickiness, new vs existing, installs and uninstalls per date."""
    dau = _count_by(days, "activity_date", "dau")
    new_users = _count_by(users.filter(F.col("first_seen_date").isNotNull()), "first_seen_date", "new_users")
    new_active = _count_by(
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


# ---------------------------------------------------------------- demographics and users

def demographics(users: DataFrame, rng: DateRange, window_days: int = 30) -> DataFrame:
    """Users, 30-day active and 30-day new users per gender x age group x country, as of the range end."""
    since = F.lit(rng.end - dt.timedelta(days=window_days - 1))
    until = F.lit(rng.end)
    return users.groupBy("gender", "age_group", "country").agg(
        F.count(F.lit(1)).cast("long").alias("users"),
        F.sum(F.when(F.col("last_active_date") >= since, 1).otherwise(0)).cast("long").alias("active_users_30d"),
        F.sum(F.when(F.col("first_seen_date").between(since, until), 1).otherwise(0)).cast("long").alias("new_users_30d"),
    ).transform(in_order("gender", "age_group", "country"))


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
    if opening is None:
        before = points.join(cal.agg(F.min("activity_date").alias("s")), F.col("activity_date") < F.col("s")).agg(
            F.coalesce(F.sum(F.col("earned") - F.col("redeemed")), F.lit(0)).alias("opening")
        )
    else:
        before = cal.sparkSession.range(1).select(F.lit(int(opening)).cast("long").alias("opening"))
    out = (
        cal.join(per_day, "activity_date", "left")
        .join(daily.select("activity_date", "dau"), "activity_date", "left")
        .fillna(0, subset=["points_earned", "points_redeemed", "earners", "redeemers", "participants", "dau"])
        .crossJoin(before)
    )
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


def quarantine_summary(quarantine: DataFrame) -> DataFrame:
    """Quarantined lines per feed and reason."""
    return quarantine.groupBy("feed", "reason").agg(F.count(F.lit(1)).cast("long").alias("lines")).transform(in_order("feed", "reason"))
