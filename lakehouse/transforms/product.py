"""Gold: product-analytics depth (retention, funnel, revenue, sessions, content) as pure DataFrame functions.

Every function takes prepared DataFrames (see docs/product-metrics.md for the inputs) and returns a
DataFrame with exactly the columns and types of docs/contracts.md. No Python UDFs, no range or cross
joins over users x dates: retention explodes only real activity and uses each user's last active date
for the "unbounded" curve; the funnel matches steps with one running window per step.
"""

from __future__ import annotations

from typing import Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from lakehouse.transforms.gold import DateRange, in_order, local_date, money_sum, ratio

DEFAULT_FUNNEL_STEPS = ("item_view", "add_to_cart", "checkout_start", "purchase")
UNKNOWN = "unknown"


def _is_success(col: str = "payment_status") -> Column:
    """A successful payment (metrics.md: purchases count only payment_status = success)."""
    return F.coalesce(F.col(col) == F.lit("success"), F.lit(False))


def _long(name: str) -> Column:
    return F.coalesce(F.col(name), F.lit(0)).cast("long").alias(name)


def _in_range(df: DataFrame, rng: DateRange, col: str = "activity_date") -> DataFrame:
    return df.filter(F.col(col).between(F.lit(rng.start), F.lit(rng.end)))


# ---------------------------------------------------------------- retention

def _cohort_members(users: DataFrame, rng: DateRange) -> DataFrame:
    """Users whose first_seen_date is a date of the range (earlier or later first_seen -> no cohort)."""
    return _in_range(users.select("user_id", "first_seen_date", "last_active_date"), rng, "first_seen_date")


def retention_daily(cal: DataFrame, users: DataFrame, days: DataFrame, rng: DateRange,
                    max_day: int = 30) -> DataFrame:
    """Cohort x day_n retention, exact-day and unbounded ("on that day or later").

    Rows: every date of the range is a cohort (an empty one has cohort_size 0 and a null rate);
    day_n runs 0..max_day while cohort_date + day_n <= range end.
    """
    members = _cohort_members(users, rng)
    grid = cal.select(
        F.col("activity_date").alias("cohort_date"),
        F.explode(F.sequence(F.lit(0), F.least(F.lit(max_day), F.datediff(F.lit(rng.end), F.col("activity_date"))))).alias("day_n"),
    )
    size = members.groupBy(F.col("first_seen_date").alias("cohort_date")).agg(F.count(F.lit(1)).alias("cohort_size"))
    # Exact day: only real activity is exploded (one row per member-active-day within max_day).
    exact = (
        days.select("user_id", "activity_date")
        .join(members.select("user_id", "first_seen_date"), "user_id")
        .select(F.col("first_seen_date").alias("cohort_date"),
                F.datediff("activity_date", "first_seen_date").alias("day_n"))
        .filter(F.col("day_n").between(0, max_day))
        .groupBy("cohort_date", "day_n").agg(F.count(F.lit(1)).alias("retained_users"))
    )
    # Unbounded: active on cohort_date + n or later <=> last_active_date >= cohort_date + n.
    # Count members per capped "last offset", then a reverse running sum over day_n.
    last = (
        members.filter(F.col("last_active_date") >= F.col("first_seen_date"))
        .select(F.col("first_seen_date").alias("cohort_date"),
                F.least(F.lit(max_day), F.datediff("last_active_date", "first_seen_date")).alias("day_n"))
        .groupBy("cohort_date", "day_n").agg(F.count(F.lit(1)).alias("_last"))
    )
    tail = Window.partitionBy("cohort_date").orderBy(F.col("day_n").desc()).rowsBetween(Window.unboundedPreceding, 0)
    out = (
        grid.join(size, "cohort_date", "left")
        .join(exact, ["cohort_date", "day_n"], "left")
        .join(last, ["cohort_date", "day_n"], "left")
        .fillna(0, subset=["cohort_size", "retained_users", "_last"])
        .withColumn("retained_users_unbounded", F.sum("_last").over(tail))
    )
    return out.select(
        "cohort_date",
        F.col("day_n").cast("int").alias("day_n"),
        _long("cohort_size"),
        _long("retained_users"),
        _long("retained_users_unbounded"),
        ratio(F.col("retained_users"), F.col("cohort_size")).alias("retention_rate"),
    ).transform(in_order("cohort_date", "day_n"))


def retention_weekly(cal: DataFrame, users: DataFrame, days: DataFrame, rng: DateRange,
                     max_week: int = 12) -> DataFrame:
    """Cohort week (Monday) x week_n retention: retained when active on any day of week n.

    Cohorts are the Monday-weeks that contain a date of the range (members: first_seen_date inside
    the range); week_n runs 0..max_week while its Monday is <= range end.
    """
    monday = lambda c: F.trunc(c, "week")  # noqa: E731 - Spark's week starts on Monday
    members = _cohort_members(users, rng).select("user_id", monday(F.col("first_seen_date")).alias("cohort_week"))
    grid = (
        cal.select(monday(F.col("activity_date")).alias("cohort_week")).distinct()
        .select("cohort_week", F.explode(F.sequence(
            F.lit(0), F.least(F.lit(max_week), F.floor(F.datediff(F.lit(rng.end), F.col("cohort_week")) / 7).cast("int"))
        )).alias("week_n"))
    )
    size = members.groupBy("cohort_week").agg(F.count(F.lit(1)).alias("cohort_size"))
    retained = (
        days.select("user_id", "activity_date")
        .join(members, "user_id")
        .select("user_id", "cohort_week",
                (F.datediff(monday(F.col("activity_date")), F.col("cohort_week")) / 7).cast("int").alias("week_n"))
        .filter(F.col("week_n").between(0, max_week))
        .groupBy("cohort_week", "week_n").agg(F.countDistinct("user_id").alias("retained_users"))
    )
    out = grid.join(size, "cohort_week", "left").join(retained, ["cohort_week", "week_n"], "left")
    return out.select(
        "cohort_week",
        F.col("week_n").cast("int").alias("week_n"),
        _long("cohort_size"),
        _long("retained_users"),
        ratio(F.coalesce(F.col("retained_users"), F.lit(0)), F.coalesce(F.col("cohort_size"), F.lit(0))).alias("retention_rate"),
    ).transform(in_order("cohort_week", "week_n"))


# ---------------------------------------------------------------- funnel

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
        cond = cond & _is_success()
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


# ---------------------------------------------------------------- revenue

def revenue_daily(cal: DataFrame, active: DataFrame, days: DataFrame) -> DataFrame:
    """Orders, revenue, buyers, failed payments and conversion/ARPU/ARPPU per date (zero-filled).

    `amount` is summed as given: the gold step passes amounts in the reporting currency (null for a
    currency without a rate, which adds nothing), see `gold.to_reporting_currency`."""
    purchases = active.filter(F.col("event") == "purchase")
    ok = _is_success()
    per_day = purchases.groupBy("activity_date").agg(
        F.sum(F.when(ok, 1).otherwise(0)).alias("orders"),
        money_sum(F.when(ok, F.coalesce(F.col("amount"), F.lit(0.0))).otherwise(0.0)).alias("revenue"),
        F.countDistinct(F.when(ok, F.col("user_id"))).alias("buyers"),
        F.sum(F.when(ok, 0).otherwise(1)).alias("failed_payments"),
    )
    dau = days.groupBy("activity_date").agg(F.count(F.lit(1)).alias("dau"))
    out = (
        cal.join(per_day, "activity_date", "left").join(dau, "activity_date", "left")
        .fillna(0, subset=["orders", "buyers", "failed_payments", "dau"]).fillna(0.0, subset=["revenue"])
    )
    return out.select(
        "activity_date",
        _long("orders"),
        F.col("revenue").cast("double").alias("revenue"),
        _long("buyers"),
        _long("failed_payments"),
        ratio(F.col("buyers"), F.col("dau")).alias("conversion_rate"),
        ratio(F.col("revenue"), F.col("dau")).alias("arpu"),
        ratio(F.col("revenue"), F.col("buyers")).alias("arppu"),
    ).transform(in_order("activity_date"))


def user_revenue(active: DataFrame) -> DataFrame:
    """Per user with at least one successful purchase: orders, revenue, first and last purchase dates
    (`amount` in the reporting currency, as for `revenue_daily`)."""
    ok = active.filter((F.col("event") == "purchase") & _is_success())
    return ok.groupBy("user_id").agg(
        F.count(F.lit(1)).cast("long").alias("orders"),
        F.coalesce(money_sum(F.col("amount")), F.lit(0.0)).cast("double").alias("revenue"),
        F.min("activity_date").alias("first_purchase_date"),
        F.max("activity_date").alias("last_purchase_date"),
    ).transform(in_order("user_id"))


def revenue_by_currency_daily(money: DataFrame) -> DataFrame:
    """Successful purchases per date and currency as sent: orders, the original amounts, and revenue
    in the reporting currency; `converted` is false (and `revenue` null) for a currency with no rate
    on that date, whose orders are left out of revenue. Only pairs that occur.

    `money` holds active events after `to_reporting_currency` (original_amount, currency, converted).
    """
    ok = money.filter((F.col("event") == "purchase") & _is_success())
    per = ok.groupBy("activity_date", "currency").agg(
        F.count(F.lit(1)).cast("long").alias("orders"),
        F.coalesce(money_sum(F.col("original_amount")), F.lit(0.0)).alias("amount"),
        F.coalesce(money_sum(F.col("amount")), F.lit(0.0)).alias("revenue"),
        F.max(F.col("converted").cast("int")).alias("_c"),
    )
    converted = F.col("_c") == 1
    return per.select(
        "activity_date", "currency", "orders",
        F.col("amount").cast("double").alias("amount"),
        F.when(converted, F.col("revenue")).cast("double").alias("revenue"),
        converted.alias("converted"),
    ).transform(in_order("activity_date", "currency"))


def add_user_revenue(previous: DataFrame, new: DataFrame) -> DataFrame:
    """user_revenue after new purchases: orders and (exact) revenue add up, purchase dates widen."""
    return previous.unionByName(new).groupBy("user_id").agg(
        F.sum("orders").cast("long").alias("orders"),
        F.coalesce(money_sum(F.col("revenue")), F.lit(0.0)).cast("double").alias("revenue"),
        F.min("first_purchase_date").alias("first_purchase_date"),
        F.max("last_purchase_date").alias("last_purchase_date"),
    ).transform(in_order("user_id"))


# ---------------------------------------------------------------- sessions

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
        _long("sessions"),
        _long("users"),
        total.alias("total_session_seconds"),
        ratio(F.col("total_session_seconds"), F.col("sessions")).alias("avg_session_seconds"),
        ratio(F.col("total_session_seconds"), F.col("users")).alias("avg_time_per_user_seconds"),
    ).transform(in_order("activity_date"))


# ---------------------------------------------------------------- events and content

def event_counts_daily(cal: DataFrame, events: DataFrame, rng: DateRange,
                       names: Sequence[str] | None = None) -> DataFrame:
    """Events and distinct users per date x event name, all valid events (app_uninstall included).

    Zero-filled over every date of the calendar x every event name seen (`names`, by default those
    of `events`; a small set); events dated outside the range (e.g. an uninstall after the last
    active event) are left out.
    """
    counts = _in_range(events, rng).groupBy("activity_date", "event").agg(
        F.count(F.lit(1)).alias("events"), F.countDistinct("user_id").alias("users"))
    if names is None:
        names = events.select("event").distinct()
    else:
        names = cal.sparkSession.createDataFrame([(n,) for n in sorted(names)], "event string")
    out = cal.crossJoin(F.broadcast(names)).join(counts, ["activity_date", "event"], "left")
    return out.select("activity_date", "event", _long("events"), _long("users")).transform(in_order("activity_date", "event"))


def page_views_daily(active: DataFrame, rng: DateRange) -> DataFrame:
    """page_view events and distinct viewers per date x page (only pairs that occur; null page -> 'unknown')."""
    views = _in_range(active.filter(F.col("event") == "page_view"), rng)
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
    quiz = _in_range(active.filter(F.col("event") == "quiz_attempt"), rng)
    score_pct = F.when((F.col("max_score") > 0) & F.col("score").isNotNull(), F.col("score") / F.col("max_score") * 100.0)
    agg = quiz.groupBy("activity_date", F.coalesce(F.col("quiz_id"), F.lit(UNKNOWN)).alias("quiz_id")).agg(
        F.count(F.lit(1)).alias("attempts"),
        F.countDistinct("user_id").alias("participants"),
        F.sum(F.when(F.col("passed"), 1).otherwise(0)).alias("passes"),
        F.avg(score_pct).alias("avg_score_pct"),
        F.avg("duration_s").alias("avg_duration_s"),
    )
    return agg.select(
        "activity_date", "quiz_id", _long("attempts"), _long("participants"), _long("passes"),
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
        "course_id", _long("learners"), _long("completions"),
        ratio(F.col("completions"), F.col("learners")).alias("completion_rate"),
    ).transform(in_order("course_id"))
