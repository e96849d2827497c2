"""Gold step: compute the gold tables from silver and publish them, in full or incrementally.

A full build computes every table from all of silver. An incremental run (the default once gold
exists) finds the first date the new silver rows can change (their dates, the sessions they
extend, the first-seen dates they move) and rebuilds only the rows from that date on: date tables
from that date, rolling windows and the funnel from the dates that reach it, retention from the
cohorts that reach it, user_activity_daily also for the users whose attributes changed. Per-user
tables are recomputed from compact inputs: the previous gold (pinned at the versions the last gold
run left, see `ops.gold_state`), the touched users' history and sums that only grow. Both give
the same tables (tests/test_incremental.py). Tables are written concurrently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from lakehouse import currency, ops, quality
from lakehouse.config import expectations_path
from lakehouse.tables import GOLD, Lake, local_path, one_partition
from lakehouse.transforms import gold as G
from lakehouse.transforms import product as P
from lakehouse.transforms import segments as S
from lakehouse.transforms.silver import SILVER_USERS_SCHEMA

_TRACE = os.environ.get("LAKEHOUSE_GOLD_TRACE") == "1"
_T0 = [0.0]


def _lap(step: str) -> None:
    """With LAKEHOUSE_GOLD_TRACE=1, print seconds since the previous lap (profiling gold's steps)."""
    if _TRACE:
        import sys
        import time

        now = time.perf_counter()
        print(f"gold trace: {step} {now - _T0[0]:.1f}s", file=sys.stderr, flush=True)
        _T0[0] = now


# Bump when a change to the gold transforms changes their results: the next run rebuilds in full.
GOLD_LOGIC_VERSION = "6"  # 6: exact total_session_seconds, funnel window flag (issue 11); 5: session gaps and lengths to the microsecond (issue 11); 4: money in the reporting currency at ECB rates; 3: k-means on the driver

# The config sections gold depends on: a change to any of them makes the next run rebuild in full.
GOLD_SETTINGS = ("timezone", "excluded_events", "demographics", "funnel", "retention", "segments", "clustering",
                 "session_gap_minutes", "reporting_currency", "currency_rates_file")

# Tables that carry money: each gets a `reporting_currency` column naming the currency of its amounts.
MONEY_TABLES = ("revenue_daily", "user_revenue", "revenue_by_currency_daily", "user_activity_daily", "users",
                "segment_summary", "cluster_profiles")

# The silver.events columns any gold table reads.
GOLD_EVENT_COLUMNS = (
    "event_id", "event", "ts", "user_id", "device", "country", "page", "amount", "currency", "payment_status",
    "points", "course_id", "progress_pct", "quiz_id", "score", "max_score", "passed", "duration_s",
)


@dataclass
class GoldInputs:
    """The prepared frames every gold table is built from."""

    events: DataFrame
    active: DataFrame
    days: DataFrame
    neighbours: DataFrame
    users: DataFrame
    sessions: DataFrame
    cal: DataFrame
    rng: G.DateRange
    quarantine: DataFrame
    cfg: dict
    money: DataFrame | None = None  # active events with amounts in the reporting currency
    cached: list = field(default_factory=list)

    def release(self) -> None:
        """Drop the cached intermediates, newest first (see `run`)."""
        for df in reversed(self.cached):
            df.unpersist()


def prepare(spark: SparkSession, events: DataFrame, profiles: DataFrame, sessions: DataFrame,
            quarantine: DataFrame, cfg: dict) -> GoldInputs | None:
    """Shared intermediates, or None when silver holds no active event yet."""
    tz = cfg["timezone"]
    excluded = tuple(cfg["excluded_events"])
    # Only the columns gold reads: the raw properties text and lineage columns stay in silver.
    events = events.select(*GOLD_EVENT_COLUMNS).transform(G.with_activity_date(tz)).persist(StorageLevel.MEMORY_AND_DISK)
    active = events.transform(G.active_only(excluded))
    rng = G.date_range(active)
    if rng is None:
        events.unpersist()
        return None
    # The intermediates are materialised with their lineage cut (small plans downstream, see
    # `incremental`); the events stay a columnar cache (the largest frame).
    money = active.transform(converter(spark, cfg, rng))
    days = G.user_days(money, G.sessions_per_day(sessions, tz)).localCheckpoint(eager=True)
    neighbours = G.with_neighbours(days).localCheckpoint(eager=True)
    users = G.user_dimension(days, profiles, G.first_event_country(events), rng, tz).localCheckpoint(eager=True)
    cal = G.calendar(spark, rng).localCheckpoint(eager=True)
    return GoldInputs(events, active, days, neighbours, users, sessions, cal, rng, quarantine, cfg, money=money,
                      cached=[events])


def converter(spark: SparkSession, cfg: dict, rng: G.DateRange):
    """The transform putting purchases' amounts in the reporting currency over the range's dates."""
    rates = currency.rates_frame(spark, cfg, rng.start, rng.end).localCheckpoint(eager=True)
    return G.to_reporting_currency(rates, currency.reporting_currency(cfg))


def with_reporting_currency(name: str, df: DataFrame, cfg: dict) -> DataFrame:
    """A money table with the `reporting_currency` column (other tables unchanged)."""
    if name not in MONEY_TABLES:
        return df
    return df.withColumn("reporting_currency", F.lit(currency.reporting_currency(cfg)))


def core_tables(x: GoldInputs) -> dict[str, Callable[[], DataFrame]]:
    """The gold tables of the core issue, as thunks so that they are built when written."""
    rolling = G.rolling_active(x.cal, x.neighbours, x.rng, {"wau": 7, "mau": 30})
    daily = G.engagement_daily(x.cal, x.days, rolling, x.users, x.events).persist(StorageLevel.MEMORY_AND_DISK)
    x.cached.append(daily)
    points = G.loyalty_events(x.events)
    balances = G.loyalty_balances(points)
    return {
        "engagement_daily": lambda: daily,
        "engagement_monthly": lambda: G.engagement_monthly(x.days, x.users, daily, x.rng),
        "lifecycle_daily": lambda: G.lifecycle_daily(x.cal, x.neighbours, x.users, x.rng),
        "demographics": lambda: G.demographics(x.users, x.rng, x.cfg["demographics"]["window_days"]),
        "loyalty_daily": lambda: G.loyalty_daily(x.cal, points, daily),
        "loyalty_balances": lambda: balances,
        "user_activity_daily": lambda: G.user_activity_daily(x.days, x.users),
        "quarantine_summary": lambda: G.quarantine_summary(x.quarantine),
        "_users_base": lambda: G.users_table(x.users, balances),
    }


def product_tables(x: GoldInputs, users_base: DataFrame) -> dict[str, Callable[[], DataFrame]]:
    """Retention, funnel, revenue, sessions, content, segments and clusters (metrics.md)."""
    cfg = x.cfg
    tz = cfg["timezone"]
    funnel = cfg["funnel"]
    users, segment_summary, cluster_profiles = S.segment_and_cluster(
        users_base, x.days, x.rng, cfg.get("segments"), cfg.get("clustering"),
    )
    # Funnel entries once, for funnel_entries and funnel_daily; windows judged at the range's end.
    entries = P.funnel_user_entries(x.active, x.rng.end, funnel["steps"], funnel["window_days"]).localCheckpoint(eager=True)
    return {
        "users": lambda: users,
        "segment_summary": lambda: segment_summary,
        "cluster_profiles": lambda: cluster_profiles,
        "retention_daily": lambda: P.retention_daily(x.cal, x.users, x.days, x.rng, cfg["retention"]["max_day"]),
        "retention_weekly": lambda: P.retention_weekly(x.cal, x.users, x.days, x.rng, cfg["retention"]["max_week"]),
        "funnel_daily": lambda: P.funnel_daily(x.active, x.rng.end, funnel["steps"], funnel["window_days"], entries),
        "funnel_entries": lambda: entries,
        "revenue_daily": lambda: P.revenue_daily(x.cal, x.money, x.days),
        "user_revenue": lambda: P.user_revenue(x.money),
        "revenue_by_currency_daily": lambda: P.revenue_by_currency_daily(x.money),
        "sessions_daily": lambda: P.sessions_daily(x.cal, x.sessions, tz),
        "event_counts_daily": lambda: P.event_counts_daily(x.cal, x.events, x.rng),
        "page_views_daily": lambda: P.page_views_daily(x.active, x.rng),
        "hourly_activity": lambda: P.hourly_activity(x.events),
        "quiz_daily": lambda: P.quiz_daily(x.active, x.rng),
        "course_progress": lambda: P.course_progress(x.active),
    }


def build(x: GoldInputs) -> dict[str, Callable[[], DataFrame]]:
    """Every gold table this version of the project builds."""
    tables = core_tables(x)
    users_base = tables.pop("_users_base")()
    tables.update(product_tables(x, users_base))
    return tables


# ---------------------------------------------------------------- incremental

DAY_COLUMNS = ("user_id", "activity_date", "events", "purchases", "revenue", "points_earned", "points_redeemed",
               "device", "sessions")
ATTRIBUTES = ("first_seen_date", "country", "gender", "age_group")  # copied onto user_activity_daily rows
MAX_LISTED_USERS = 5000  # above this many users with changed attributes, user_activity_daily is rewritten whole


@dataclass
class Scope:
    """What a gold run recomputes: everything (`full`), or the rows from `since` on (see the module doc)."""

    full: bool
    reason: str = ""
    since: dt.date | None = None
    funnel_since: dt.date | None = None
    cohorts_since: dt.date | None = None
    extra_cohorts: list = field(default_factory=list)
    rng: G.DateRange | None = None
    new_event_names: list = field(default_factory=list)
    new_events: int = 0
    touched_users: int = 0
    relisted_users: int = 0
    users: int = 0

    def describe(self, tables: int) -> str:
        """One line for the run summary and ops.pipeline_runs.recomputed."""
        days = (self.rng.end - self.rng.start).days + 1 if self.rng else 0
        if self.full:
            return f"full rebuild ({self.reason}): {tables} tables over all {days} dates"
        rebuilt = max(0, (self.rng.end - self.since).days + 1)
        extra = f" + {len(self.extra_cohorts)} older" if self.extra_cohorts else ""
        return (f"incremental: {self.new_events} new events; dates from {self.since} ({rebuilt} of {days} dates; "
                f"funnel entries from {self.funnel_since}, retention cohorts from {self.cohorts_since}{extra}); "
                f"{self.touched_users} of {self.users} users re-derived from their history, "
                f"{self.relisted_users} users' activity rows re-labelled"
                + (f"; new event names (zero-filled on earlier dates): {', '.join(self.new_event_names)}" if self.new_event_names else ""))


def settings_fingerprint(cfg: dict) -> str:
    """A hash of what gold's results depend on besides data: its settings, rules and logic version."""
    settings = {k: cfg.get(k) for k in GOLD_SETTINGS}
    text = json.dumps([GOLD_LOGIC_VERSION, settings, currency.fingerprint(cfg)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode() + expectations_path().read_bytes()).hexdigest()[:16]


def last_state(lake: Lake, batch_id: int) -> dict | None:
    """The ops.gold_state row the gold run that completed `batch_id` recorded, if any."""
    rows = [r for r in ops.read(lake, "ops.gold_state") if r["batch_id"] == batch_id]
    return max(rows, key=lambda r: r["recorded_at"]) if rows else None


def record_state(lake: Lake, batch_id: int, fingerprint: str, rng: G.DateRange, names, scope: Scope) -> None:
    """Remember what the next incremental run starts from: table versions, range, event names."""
    versions = {name: ops.table_version(lake, f"gold.{name}") for name in GOLD}
    ops.append(lake, "ops.gold_state", [{
        "batch_id": batch_id, "fingerprint": fingerprint, "range_start": rng.start.isoformat(),
        "range_end": rng.end.isoformat(), "event_names_json": json.dumps(sorted(names)),
        "versions_json": json.dumps(versions, sort_keys=True), "mode": "full" if scope.full else "incremental",
        "since": None if scope.full else scope.since.isoformat(), "recorded_at": ops.now(),
    }])


def _version_readable(lake: Lake, name: str, version: int) -> bool:
    """True when every data file of that table version is still there (VACUUM may have removed them)."""
    from deltalake import DeltaTable

    path = lake.path(f"gold.{name}")
    try:
        files = DeltaTable(lake.rs_uri(f"gold.{name}"), version=version).file_uris()
    except Exception:  # noqa: BLE001 - the version is gone from the log
        return False
    if "://" in path and not path.startswith("file:"):
        return True  # remote stores: trust the log
    return all(os.path.exists(local_path(f)) for f in files)


def _large(lake: Lake, name: str, version: int, min_rows: int) -> bool:
    """Whether the table (at `version`) holds more than `min_rows` rows, from its Delta log.

    A large table gets only its rebuilt rows replaced (Delta replaceWhere); a smaller one is
    rewritten whole, kept rows included: a delete-and-insert costs more Spark jobs than a small file.
    """
    from deltalake import DeltaTable

    actions = DeltaTable(lake.rs_uri(f"gold.{name}"), version=version).get_add_actions(flatten=True)
    rows = actions.column("num_records").to_pylist() if "num_records" in actions.schema.names else []
    return sum(r or 0 for r in rows) > min_rows


@dataclass
class Previous:
    """Gold as the last completed gold run left it: each table read at its recorded version."""

    spark: SparkSession
    lake: Lake
    versions: dict
    frames: dict = field(default_factory=dict)

    def read(self, name: str) -> DataFrame:
        """The table at its recorded version (its files listed once: `Lake.read_pinned`)."""
        if name not in self.frames:
            self.frames[name] = self.lake.read_pinned(self.spark, f"gold.{name}", self.versions[name])
        return self.frames[name]


def _date_ts(day: dt.date, days_before: int = 2) -> F.Column:
    """A UTC instant safely before local midnight of `day` in any timezone (a data-skipping bound on ts)."""
    return F.lit(dt.datetime.combine(day - dt.timedelta(days=days_before), dt.time())).cast("timestamp")


def _sql_date(d: dt.date) -> str:
    return f"DATE'{d.isoformat()}'"


def _sql_string(v: str) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in(col: str, values) -> str:
    """`col IN (...)` for dates or strings, as SQL (a replaceWhere predicate)."""
    lits = [_sql_date(v) if isinstance(v, dt.date) else _sql_string(v) for v in values]
    return f"{col} IN ({', '.join(lits)})"


def incremental(spark: SparkSession, lake: Lake, cfg: dict, state: dict, after_batch: int,
                quarantine: DataFrame, cached: list, prev: Previous) -> tuple[Scope, dict[str, tuple[DataFrame, str | None]]]:
    """The gold tables a run rebuilds after silver batches > `after_batch`: {name: (frame, predicate)}.

    A frame with a predicate holds exactly the table's rows matching it (they replace those rows);
    one without is the whole table. Returns a full-rebuild Scope (and no tables) when an incremental
    run cannot give the rebuild's result: the first date of the lake moves, a new event name appears
    (event_counts_daily zero-fills every date for it), or the previous gold is no longer readable.
    """
    tz, excluded = cfg["timezone"], tuple(cfg["excluded_events"])
    versions = json.loads(state["versions_json"])
    if any(versions.get(n) is None for n in GOLD):
        return Scope(full=True, reason="a gold table is missing"), {}
    if not all(_version_readable(lake, n, versions[n]) for n in GOLD):
        return Scope(full=True, reason="the previous gold version was vacuumed"), {}
    old = G.DateRange(dt.date.fromisoformat(state["range_start"]), dt.date.fromisoformat(state["range_end"]))
    names = set(json.loads(state["event_names_json"]))

    def keep(df: DataFrame) -> DataFrame:
        # Materialised with the lineage cut: the plans built on these stay small, and Spark's cache
        # lookup (which compares every plan with every cached one) has fewer and smaller plans.
        return df.localCheckpoint(eager=True)

    silver = lake.read_pinned(spark, "silver.events")
    profiles = lake.read_or_empty(spark, "silver.users", SILVER_USERS_SCHEMA, pinned=True)
    sessions = read_sessions(spark, lake)
    new = keep(silver.filter(F.col("batch_id") > after_batch).select(*GOLD_EVENT_COLUMNS).transform(G.with_activity_date(tz)))
    is_active = ~F.col("event").isin(*excluded)
    st = new.agg(
        F.count(F.lit(1)).alias("n"), F.min("activity_date").alias("d"), F.min("ts").alias("t"),
        F.min(F.when(is_active, F.col("activity_date"))).alias("s"), F.max(F.when(is_active, F.col("activity_date"))).alias("e"),
        F.collect_set("event").alias("names"),
    ).collect()[0]
    _lap("new-batch stats")
    new_names = sorted(set(st["names"]) - names)
    if st["s"] is not None and st["s"] <= old.start:
        return Scope(full=True, reason=f"events dated on or before the lake's first date {old.start}"), {}
    rng = G.DateRange(old.start, max(old.end, st["e"] or old.end))
    to_money = converter(spark, cfg, rng)  # depends only on each event's date and currency

    # First date whose rows can change: the new events' dates and the sessions they join or extend.
    event_users = new.select("user_id").distinct()
    d_sessions = None
    if st["n"]:
        d_sessions = (sessions.join(F.broadcast(event_users), "user_id", "left_semi")
                      .filter(F.col("session_end") >= F.lit(st["t"]))
                      .agg(F.min(G.local_date(F.col("session_start"), tz))).collect()[0][0])
    _lap("session dates")
    a0 = min(d for d in (st["d"], d_sessions, old.end + dt.timedelta(days=1)) if d is not None)

    # User-days: the previous ones before a0, the rest from silver.
    def events_since(day: dt.date) -> DataFrame:
        return (silver.filter(F.col("ts") >= _date_ts(day)).select(*GOLD_EVENT_COLUMNS)
                .transform(G.with_activity_date(tz)).filter(F.col("activity_date") >= F.lit(day)))

    def sessions_since(day: dt.date) -> DataFrame:
        return sessions.filter(F.col("session_end") >= _date_ts(day)).filter(
            G.local_date(F.col("session_start"), tz) >= F.lit(day))

    fresh = G.user_days(events_since(a0).transform(G.active_only(excluded)).transform(to_money),
                        G.sessions_per_day(sessions_since(a0), tz))
    before = prev.read("user_activity_daily").filter(F.col("activity_date") < F.lit(a0)).select(*DAY_COLUMNS)
    days = keep(before.unionByName(fresh.select(*DAY_COLUMNS)))

    # Users: the touched ones (new events or a new profile) from their whole history, the others carried.
    touched = keep(event_users.unionByName(profiles.filter(F.col("batch_id") > after_batch).select("user_id")).distinct())
    t = F.broadcast(touched)
    old_users = prev.read("users")
    derived = G.user_dimension(
        days.join(t, "user_id", "left_semi"), profiles.join(t, "user_id", "left_semi"),
        G.first_event_country(silver.join(t, "user_id", "left_semi")), rng, tz,
    )
    users = keep(derived.unionByName(G.carried_users(old_users.join(t, "user_id", "left_anti"), profiles, rng)))

    # Compare with the previous users: moved first-seen dates, changed attributes, changed last activity.
    o = old_users.select("user_id", *[F.col(c).alias(f"o_{c}") for c in (*ATTRIBUTES, "last_active_date")])
    cmp = o.join(users.select("user_id", *ATTRIBUTES, "last_active_date"), "user_id", "full")
    same = lambda c: F.col(f"o_{c}").eqNullSafe(F.col(c))  # noqa: E731
    first_moved = ~same("first_seen_date")
    attrs_changed = F.col("o_first_seen_date").isNotNull() & ~(same("first_seen_date") & same("country") & same("gender") & same("age_group"))
    cohort_moved = first_moved | ~same("last_active_date")
    diff = keep(cmp.filter(~(same("first_seen_date") & same("country") & same("gender") & same("age_group") & same("last_active_date"))))
    agg = diff.agg(
        F.min(F.when(first_moved, F.least("o_first_seen_date", "first_seen_date"))).alias("first_moved"),
        F.sum(F.when(attrs_changed, 1).otherwise(0)).alias("relisted"),
    ).collect()[0]
    _lap("users derived and compared")
    since = min(d for d in (a0, agg["first_moved"]) if d is not None)
    if since <= rng.start:
        return Scope(full=True, reason=f"a first-seen date moved to or before the lake's first date {rng.start}"), {}
    ret = cfg["retention"]
    funnel = cfg["funnel"]
    scope = Scope(full=False, since=since, rng=rng, new_events=st["n"],
                  funnel_since=funnel_rebuild_from(since, old.end, rng, int(funnel["window_days"])),
                  cohorts_since=max(rng.start, since - dt.timedelta(days=int(ret["max_day"]))),
                  touched_users=touched.count(), relisted_users=int(agg["relisted"] or 0), users=users.count())
    moved = {d for r in diff.filter(cohort_moved).select("o_first_seen_date", "first_seen_date").distinct().collect()
             for d in r if d is not None and rng.start <= d <= rng.end}
    scope.extra_cohorts = sorted(d for d in moved if d < scope.cohorts_since)
    relisted = ([r["user_id"] for r in diff.filter(attrs_changed).select("user_id").collect()]
                if scope.relisted_users <= MAX_LISTED_USERS else None)

    _lap("scope")
    # Inputs of the date tables.
    events = keep(events_since(min(scope.funnel_since, since)))
    ev = events.filter(F.col("activity_date") >= F.lit(since))
    active = ev.transform(G.active_only(excluded))
    money = active.transform(to_money)
    cal = keep(G.calendar(spark, G.DateRange(since, rng.end)))
    on_or_after = lambda c, d: f"{c} >= {_sql_date(d)}"  # noqa: E731
    from_since = on_or_after("activity_date", since)

    windows = {"wau": 7, "mau": 30}
    roll_start = max(rng.start, since - dt.timedelta(days=max(windows.values()) - 1))
    rolling = G.rolling_active(G.calendar(spark, G.DateRange(roll_start, rng.end)),
                               G.with_neighbours(days.filter(F.col("activity_date") >= F.lit(roll_start))), rng, windows)
    recent_days = days.filter(F.col("activity_date") >= F.lit(since))
    daily = keep(G.engagement_daily(cal, recent_days, rolling, users, ev))

    month0 = max(rng.start, since.replace(day=1))
    month_cal = G.calendar(spark, G.DateRange(month0, rng.end))
    month_days = days.filter(F.col("activity_date") >= F.lit(month0))
    month_dau = month_cal.join(month_days.groupBy("activity_date").agg(F.count(F.lit(1)).alias("dau")), "activity_date", "left").fillna(0, ["dau"])
    monthly = G.engagement_monthly(month_days, users, month_dau, rng)

    opening = (prev.read("loyalty_daily").filter(F.col("activity_date") == F.lit(since - dt.timedelta(days=1)))
               .select("outstanding_points").collect())
    new_points = G.loyalty_events(new)
    balances = keep(G.add_loyalty_balances(prev.read("loyalty_balances"), G.loyalty_balances(new_points)))

    relabel = from_since if relisted is None or not relisted else f"({from_since} OR {_in('user_id', relisted)})"
    uad_days = days if relisted is None else days.filter(F.expr(relabel))
    users_base = G.users_table(users, balances)
    seg_users, segment_summary, cluster_profiles = S.segment_and_cluster(users_base, days, rng, cfg.get("segments"), cfg.get("clustering"))

    cohort_cal = G.calendar(spark, G.DateRange(scope.cohorts_since, rng.end))
    if scope.extra_cohorts:
        cohort_cal = cohort_cal.unionByName(spark.createDataFrame([(d,) for d in scope.extra_cohorts], "activity_date date"))
    cohort_pred = on_or_after("cohort_date", scope.cohorts_since) + (
        f" OR {_in('cohort_date', scope.extra_cohorts)}" if scope.extra_cohorts else "")
    week0 = max(_monday(since) - dt.timedelta(weeks=int(ret["max_week"])), _monday(rng.start))
    weeks = sorted({_monday(d) for d in moved if _monday(d) < week0})
    week_cal = G.calendar(spark, G.DateRange(max(rng.start, week0), rng.end))
    if weeks:
        week_cal = week_cal.unionByName(spark.createDataFrame([(max(w, rng.start),) for w in weeks], "activity_date date"))
    week_pred = on_or_after("cohort_week", week0) + (f" OR {_in('cohort_week', weeks)}" if weeks else "")
    week_members = users.filter(F.col("first_seen_date") >= F.lit(week0))
    if weeks:
        week_members = week_members.unionByName(users.filter(F.trunc("first_seen_date", "week").isin(weeks)))
    cohort_members = users.join(F.broadcast(cohort_cal.select(F.col("activity_date").alias("first_seen_date"))), "first_seen_date", "left_semi")

    # A new event name gets zero rows on every earlier date too (all its events are new, so >= since).
    event_counts = P.event_counts_daily(cal, ev, rng, sorted(names | set(new_names)))
    counts_pred = from_since
    if new_names:
        zeros = (G.calendar(spark, G.DateRange(rng.start, since - dt.timedelta(days=1)))
                 .crossJoin(spark.createDataFrame([(n,) for n in new_names], "event string"))
                 .select("activity_date", "event", F.lit(0).cast("long").alias("events"), F.lit(0).cast("long").alias("users")))
        event_counts = event_counts.unionByName(zeros)
        counts_pred = f"({from_since} OR {_in('event', new_names)})"
    scope.new_event_names = new_names

    entries = keep(P.funnel_user_entries(events.transform(G.active_only(excluded)), rng.end, funnel["steps"],
                                         funnel["window_days"]))
    course_events = silver.filter(F.col("event") == "course_progress").select(*GOLD_EVENT_COLUMNS).transform(G.with_activity_date(tz))
    tables: dict[str, tuple[DataFrame, str | None]] = {
        "engagement_daily": (daily, from_since),
        "engagement_monthly": (monthly.filter(F.col("month") >= F.lit(since.replace(day=1))), on_or_after("month", since.replace(day=1))),
        "lifecycle_daily": (G.lifecycle_daily(cal, G.with_neighbours(days.filter(F.col("activity_date") >= F.lit(since - dt.timedelta(days=1)))), users, rng), from_since),
        "demographics": (G.demographics(users, rng, cfg["demographics"]["window_days"]), None),
        "loyalty_daily": (G.loyalty_daily(cal, G.loyalty_events(ev), daily, opening[0][0] if opening else 0), from_since),
        "loyalty_balances": (balances, None),
        "user_activity_daily": (G.user_activity_daily(uad_days, users), None if relisted is None else relabel),
        "quarantine_summary": (G.quarantine_summary(quarantine), None),
        "users": (seg_users, None),
        "segment_summary": (segment_summary, None),
        "cluster_profiles": (cluster_profiles, None),
        "retention_daily": (P.retention_daily(cohort_cal, cohort_members, days.join(F.broadcast(cohort_members.select("user_id")), "user_id", "left_semi"),
                                              rng, ret["max_day"]), cohort_pred),
        "retention_weekly": (P.retention_weekly(week_cal, week_members, days.join(F.broadcast(week_members.select("user_id")), "user_id", "left_semi"),
                                                rng, ret["max_week"]), week_pred),
        "funnel_daily": (P.funnel_daily(None, rng.end, funnel["steps"], funnel["window_days"], entries),
                         on_or_after("activity_date", scope.funnel_since)),
        "funnel_entries": (entries, on_or_after("activity_date", scope.funnel_since)),
        "revenue_daily": (P.revenue_daily(cal, money, recent_days), from_since),
        "user_revenue": (P.add_user_revenue(prev.read("user_revenue").drop("reporting_currency"),
                                            P.user_revenue(new.transform(G.active_only(excluded)).transform(to_money))), None),
        "revenue_by_currency_daily": (P.revenue_by_currency_daily(money), from_since),
        "sessions_daily": (P.sessions_daily(cal, sessions_since(since), tz), from_since),
        "event_counts_daily": (event_counts, counts_pred),
        "page_views_daily": (P.page_views_daily(active, rng), from_since),
        "hourly_activity": (P.add_hourly_activity(prev.read("hourly_activity"), P.hourly_activity(new)), None),
        "quiz_daily": (P.quiz_daily(active, rng), from_since),
        "course_progress": (P.course_progress(course_events), None),
    }
    return scope, tables


def funnel_rebuild_from(since: dt.date, old_end: dt.date, rng: G.DateRange, window_days: int) -> dt.date:
    """First funnel entry date an incremental run rebuilds: entries whose window reaches `since`
    (a day more for the timezone), and every entry whose window was still open at the previous last
    date `old_end`, since its `is_window_complete` may turn true when the range grows."""
    return max(rng.start, min(since, old_end + dt.timedelta(days=1)) - dt.timedelta(days=window_days + 1))


def _monday(d: dt.date) -> dt.date:
    """The Monday of d's week (Spark's trunc(d, 'week'))."""
    return d - dt.timedelta(days=d.weekday())


def read_sessions(spark: SparkSession, lake: Lake) -> DataFrame:
    """silver.sessions (empty when it does not exist yet), its files listed once for the run."""
    return lake.read_or_empty(
        spark, "silver.sessions",
        "user_id string, session_id string, session_start timestamp, session_end timestamp, events long, duration_s decimal(18,6), is_derived boolean",
        pinned=True,
    )


# ---------------------------------------------------------------- publishing

def publish(lake: Lake, tables: dict[str, tuple[DataFrame, str | None]], txn_version: int | None,
            threads: int = 4, on_table: Callable[[str, float], None] | None = None) -> list[str]:
    """Write each gold table: the whole table, or (with a predicate) the rows it replaces; the names written.

    Idempotent when `txn_version` is given: a retried run skips the tables it had already written.
    `on_table(name, seconds)` is called from the writing thread after each table's write.
    """

    def _write(item):
        name, (df, predicate) = item
        start = time.perf_counter()
        lake.write(one_partition(df), f"gold.{name}", mode="overwrite", replace_where=predicate,
                   txn=(f"gold.{name}", txn_version) if txn_version else None)
        if on_table is not None:
            on_table(name, time.perf_counter() - start)
        return name

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(_write, sorted(tables.items())))


def table_rows(lake: Lake, names) -> dict[str, int]:
    """Rows each gold table's latest commit wrote (the rebuilt rows of an incremental run; no scan)."""
    return {name: ops.last_commit_rows(lake, f"gold.{name}") for name in sorted(names)}


def empty_quarantine(spark: SparkSession) -> DataFrame:
    """An empty silver.quarantine frame."""
    return spark.createDataFrame([], "feed string, reason string, value string, source_file string, batch_id long, ingested_at timestamp")


def read_silver(spark: SparkSession, lake: Lake) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """silver.events, users, sessions and quarantine (empty frames where a table is missing)."""
    events = lake.read_pinned(spark, "silver.events")
    profiles = lake.read_or_empty(spark, "silver.users", SILVER_USERS_SCHEMA, pinned=True)
    quarantine = lake.read_pinned(spark, "silver.quarantine") if lake.exists(spark, "silver.quarantine") else empty_quarantine(spark)
    return events, profiles, read_sessions(spark, lake), quarantine.select("feed", "reason")


def _free_checkpoints(spark: SparkSession) -> None:
    """Let Spark drop the blocks of this run's local checkpoints: once Python lets go of the frames,
    a JVM garbage collection hands their RDDs to Spark's cleaner (otherwise that waits up to 30 min)."""
    import gc

    gc.collect()
    spark.sparkContext._jvm.java.lang.System.gc()


@dataclass
class GoldRun:
    """What a gold run published: rows written per table and what it recomputed."""

    rows: dict
    recomputed: str


def run(spark: SparkSession, lake: Lake, cfg: dict, txn_version: int | None, run_id: str = "manual",
        after_batch: int | None = None, on_table: Callable[[str, float], None] | None = None) -> GoldRun:
    """Build gold from silver, check the expectations on the resulting tables, then publish.

    Incremental when `after_batch` (the last silver batch gold has seen) has a recorded gold state
    with the same settings, else (and always when `txn_version` is None: a forced full refresh) a
    full build. A failing `fail` rule raises before anything is published, so readers keep the
    previous gold.
    """
    _lap("start")
    rules = {k: v for k, v in quality.load_rules(expectations_path()).items() if k.startswith("gold.")}
    if not lake.exists(spark, "silver.events"):
        return GoldRun({}, "nothing (silver holds no events)")
    _lap("rules loaded")
    fingerprint = settings_fingerprint(cfg)
    events, profiles, sessions, quarantine = read_silver(spark, lake)
    state = last_state(lake, after_batch) if (txn_version is not None and after_batch) else None
    _lap("silver and state read")
    cached: list = []
    x = None
    try:
        if txn_version is None:
            scope = Scope(full=True, reason="full refresh requested")
        elif state is None:
            scope = Scope(full=True, reason="no earlier gold run to build on")
        elif state["fingerprint"] != fingerprint:
            scope = Scope(full=True, reason="settings, rules or gold logic changed since the last gold run")
        else:
            prev = Previous(spark, lake, json.loads(state["versions_json"]))
            scope, tables = incremental(spark, lake, cfg, state, after_batch, quarantine, cached, prev)
        if scope.full:
            x = prepare(spark, events, profiles, sessions, quarantine, cfg)
            if x is None:
                return GoldRun({}, "nothing (silver holds no active event)")
            scope.rng = x.rng
            tables = {name: (thunk(), None) for name, thunk in build(x).items()}
            names = [r["event"] for r in x.events.select("event").distinct().collect()]
        else:
            names = set(json.loads(state["event_names_json"])) | set(scope.new_event_names)
        tables = {n: (with_reporting_currency(n, df, cfg), pred) for n, (df, pred) in tables.items()}
        _lap("planned")
        # One partition before caching: the check then fills the cache and the write reads it (a
        # coalesce over a cached frame would compute the table again, see tables.one_partition).
        frames = {f"gold.{n}": df.coalesce(1).persist(StorageLevel.MEMORY_AND_DISK) for n, (df, _) in tables.items()}
        cached.extend(frames.values())
        min_rows = int((cfg.get("gold") or {}).get("replace_where_min_rows", 200_000))
        # Rules judge each table as it will be after the write: the rows kept plus the rows rebuilt.
        checked = dict(frames)
        large = {n for n, (_, pred) in tables.items() if pred is not None and _large(lake, n, prev.versions[n], min_rows)}
        for n, (_, pred) in tables.items():
            if pred is not None:
                kept = prev.read(n).filter(~F.expr(pred))
                checked[f"gold.{n}"] = kept.unionByName(frames[f"gold.{n}"])
                if n not in large:
                    checked[f"gold.{n}"] = checked[f"gold.{n}"].coalesce(1).persist(StorageLevel.MEMORY_AND_DISK)
                    cached.append(checked[f"gold.{n}"])
        result = quality.apply(checked, rules, run_id)
        _lap("tables computed and checked")
        ops.append(lake, "ops.expectations", result.results)
        quality.raise_on_failure(result)
        out = {}
        for n, (_, pred) in tables.items():
            df = result.tables[f"gold.{n}"]
            if n in large:
                out[n] = (df.filter(F.expr(pred)), pred)  # replace just the rebuilt rows
            else:
                out[n] = (df, None)  # a small table: rewriting it whole is cheaper than a Delta DELETE
        written = publish(lake, out, txn_version, on_table=on_table)
        _lap("published")
        from lakehouse import silver as silver_step

        record_state(lake, silver_step.done_batches(lake, "silver"), fingerprint, scope.rng, names, scope)
        _lap("state recorded")
    finally:
        # Newest first: uncaching a frame that other cached frames build on makes Spark re-plan them.
        for df in reversed(cached):
            df.unpersist()
        if x is not None:
            x.release()
    _free_checkpoints(spark)
    _lap("released")
    rows = table_rows(lake, written)
    _lap("rows counted")
    return GoldRun(rows, scope.describe(len(written)))
