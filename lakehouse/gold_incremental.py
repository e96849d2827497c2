"""Incremental gold: what a run can rebuild from the rows new silver data can reach, and its inputs.

An incremental run (the default once gold exists) finds the first date the new silver rows can
change (their dates, the sessions they extend, the first-seen dates they move) and rebuilds only
the rows from that date on: date tables from that date, rolling windows and the funnel from the
dates that reach it, retention from the cohorts that reach it, user_activity_daily also for the
users whose attributes changed (each table's `scope` in `lakehouse.catalog`). Per-user tables are
recomputed from compact inputs: the previous gold (pinned at the versions the last gold run left,
see `ops.gold_state`), the touched users' history and sums that only grow. Both give the same
tables (tests/test_incremental.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from lakehouse import currency
from lakehouse.catalog import GOLD_TABLES
from lakehouse.progress import trace
from lakehouse.tables import GOLD, Lake, local_path
from lakehouse.transforms.common import DateRange, active_only, calendar, is_active, local_date, local_frame, sessions_per_day, user_days, with_activity_date, with_neighbours
from lakehouse.transforms.content import event_counts_daily
from lakehouse.transforms.engagement import engagement_daily, rolling_active
from lakehouse.transforms.funnel import funnel_user_entries
from lakehouse.transforms.loyalty import add_loyalty_balances, loyalty_balances, loyalty_events
from lakehouse.transforms.revenue import to_reporting_currency
from lakehouse.transforms.segments import segment_and_cluster
from lakehouse.transforms.silver import SILVER_USERS_SCHEMA
from lakehouse.transforms.users import carried_users, first_event_country, user_dimension, users_table

# The silver.events columns any gold table reads.
GOLD_EVENT_COLUMNS = (
    "event_id", "event", "ts", "user_id", "device", "country", "page", "amount", "currency", "payment_status",
    "points", "course_id", "progress_pct", "quiz_id", "score", "max_score", "passed", "duration_s",
)
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
    rng: DateRange | None = None
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



def _version_readable(lake: Lake, name: str, version: int) -> bool:
    """True when every data file of that table version is still there (VACUUM may have removed them)."""
    from deltalake import DeltaTable

    try:
        files = DeltaTable(lake.rs_uri(f"gold.{name}"), version=version, storage_options=lake.rs_options).file_uris()
    except Exception:  # noqa: BLE001 - the version is gone from the log
        return False
    if not lake.is_local:
        return True  # remote stores: trust the log
    return all(os.path.exists(local_path(f)) for f in files)


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

    def rows(self, name: str, columns: list[str], filters: list[tuple]) -> list[dict]:
        """A few rows of the table at its recorded version, read by delta-rs on the driver (no Spark
        job): `filters` in pyarrow's DNF form, e.g. [("activity_date", "=", date)]."""
        from deltalake import DeltaTable

        table = DeltaTable(self.lake.rs_uri(f"gold.{name}"), version=self.versions[name], storage_options=self.lake.rs_options)
        return table.to_pyarrow_table(columns=columns, filters=filters).to_pylist()


def _day_bound(day: dt.date, days_before: int = 2) -> dt.datetime:
    """A UTC instant safely before local midnight of `day` in any timezone (a data-skipping bound on ts)."""
    return dt.datetime.combine(day - dt.timedelta(days=days_before), dt.time(), tzinfo=dt.timezone.utc)


def _date_ts(day: dt.date, days_before: int = 2) -> F.Column:
    """`_day_bound` as a timestamp literal."""
    return F.lit(_day_bound(day, days_before)).cast("timestamp")


def _sql_date(d: dt.date) -> str:
    return f"DATE'{d.isoformat()}'"


def _sql_string(v: str) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in(col: str, values) -> str:
    """`col IN (...)` for dates or strings, as SQL (a replaceWhere predicate)."""
    lits = [_sql_date(v) if isinstance(v, dt.date) else _sql_string(v) for v in values]
    return f"{col} IN ({', '.join(lits)})"


@dataclass
class Rebuild:
    """The inputs of an incremental run's tables: each catalogue entry's `rebuild` reads these.

    Frames hold the rows from the scope's first date on (`cal`, `ev`, `active`, `money`,
    `recent_days`, `daily`...), the touched users re-derived (`users`, `balances`, `segmented`), or
    the cohorts and weeks an incremental run rebuilds; `predicates` maps each catalogue scope to
    the SQL predicate of the rows it replaces (None: the whole table).
    """

    cfg: dict
    rng: DateRange
    prev: Previous
    quarantine: DataFrame
    predicates: dict
    new: DataFrame  # the new batches' events
    ev: DataFrame  # events dated on or after `since`
    active: DataFrame
    money: DataFrame
    new_money: DataFrame
    cal: DataFrame
    users: DataFrame
    daily: DataFrame
    recent_days: DataFrame
    month_days: DataFrame
    month_dau: DataFrame
    lifecycle_neighbours: DataFrame
    opening_points: int
    balances: DataFrame
    relabelled_days: DataFrame
    segmented: tuple
    cohort_cal: DataFrame
    cohort_members: DataFrame
    cohort_days: DataFrame
    week_cal: DataFrame
    week_members: DataFrame
    week_days: DataFrame
    entries: DataFrame
    recent_sessions: DataFrame
    event_counts: DataFrame
    course_events: DataFrame

    def tables(self) -> dict[str, tuple[DataFrame, str | None]]:
        """{name: (frame, predicate)} for every catalogue table: the rows its scope replaces."""
        out = {}
        for t in GOLD_TABLES:
            pred = self.predicates[t.scope]
            df = t.rebuild(self)
            out[t.name] = (df, None) if pred is None else (df.filter(F.expr(pred)), pred)
        return out


def incremental(spark: SparkSession, lake: Lake, cfg: dict, state: dict, after_batch: int,
                quarantine: DataFrame, prev: Previous) -> tuple[Scope, Rebuild | None]:
    """What a run rebuilds after silver batches > `after_batch`: its Scope and the Rebuild inputs.

    `Rebuild.tables()` gives {name: (frame, predicate)}: a frame with a predicate holds exactly the
    table's rows matching it (they replace those rows); one without is the whole table. Returns a
    full-rebuild Scope (and no Rebuild) when an incremental run cannot give the rebuild's result:
    the first date of the lake moves or the previous gold is no longer readable.
    """
    tz, excluded = cfg["timezone"], tuple(cfg["excluded_events"])
    versions = json.loads(state["versions_json"])
    if any(versions.get(n) is None for n in GOLD):
        return Scope(full=True, reason="a gold table is missing"), None
    if not all(_version_readable(lake, n, versions[n]) for n in GOLD):
        return Scope(full=True, reason="the previous gold version was vacuumed"), None
    old = DateRange(dt.date.fromisoformat(state["range_start"]), dt.date.fromisoformat(state["range_end"]))
    names = set(json.loads(state["event_names_json"]))

    def keep(df: DataFrame) -> DataFrame:
        # Materialised with the lineage cut: the plans built on these stay small, and Spark's cache
        # lookup (which compares every plan with every cached one) has fewer and smaller plans.
        return df.localCheckpoint(eager=True)

    silver = lake.read_pinned(spark, "silver.events")
    profiles = lake.read_or_empty(spark, "silver.users", SILVER_USERS_SCHEMA, pinned=True)
    sessions = read_sessions(spark, lake)
    # Checkpointed lazily: the statistics' aggregation below materialises it (one job, not two).
    new = (silver.filter(F.col("batch_id") > after_batch).select(*GOLD_EVENT_COLUMNS).transform(with_activity_date(tz))
           .localCheckpoint(eager=False))
    active = is_active(excluded)
    st = new.agg(
        F.count(F.lit(1)).alias("n"), F.min("activity_date").alias("d"), F.min("ts").alias("t"),
        F.min(F.when(active, F.col("activity_date"))).alias("s"), F.max(F.when(active, F.col("activity_date"))).alias("e"),
        F.collect_set("event").alias("names"),
    ).collect()[0]
    trace("new-batch stats")
    new_names = sorted(set(st["names"]) - names)
    if st["s"] is not None and st["s"] <= old.start:
        return Scope(full=True, reason=f"events dated on or before the lake's first date {old.start}"), None
    rng = DateRange(old.start, max(old.end, st["e"] or old.end))
    to_money = converter(spark, cfg, rng)  # depends only on each event's date and currency

    # First date whose rows can change: the new events' dates and the sessions they join or extend.
    event_users = new.select("user_id").distinct()
    d_sessions = None
    if st["n"]:
        d_sessions = (sessions.join(F.broadcast(event_users), "user_id", "left_semi")
                      .filter(F.col("session_end") >= F.lit(st["t"]))
                      .agg(F.min(local_date(F.col("session_start"), tz))).collect()[0][0])
    trace("session dates")
    a0 = min(d for d in (st["d"], d_sessions, old.end + dt.timedelta(days=1)) if d is not None)

    # User-days: the previous ones before a0, the rest from silver.
    def events_since(day: dt.date) -> DataFrame:
        # silver.events is kept in time order (tables.ORDERED): its files and row groups before the bound are skipped.
        recent = lake.read_pinned(spark, "silver.events", reaching=("ts", _day_bound(day)))
        return (recent.filter(F.col("ts") >= _date_ts(day)).select(*GOLD_EVENT_COLUMNS)
                .transform(with_activity_date(tz)).filter(F.col("activity_date") >= F.lit(day)))

    def sessions_since(day: dt.date) -> DataFrame:
        return sessions.filter(F.col("session_end") >= _date_ts(day)).filter(
            local_date(F.col("session_start"), tz) >= F.lit(day))

    fresh = user_days(events_since(a0).transform(active_only(excluded)).transform(to_money),
                        sessions_per_day(sessions_since(a0), tz))
    before = prev.read("user_activity_daily").filter(F.col("activity_date") < F.lit(a0)).select(*DAY_COLUMNS)
    days = keep(before.unionByName(fresh.select(*DAY_COLUMNS)))

    # Users: the touched ones (new events or a new profile) from their whole history, the others carried.
    touched = event_users.unionByName(profiles.filter(F.col("batch_id") > after_batch).select("user_id")).distinct()
    # Cached, not checkpointed: the four joins below broadcast it once (Spark reuses a broadcast of
    # the same cached frame within a query, not of a local checkpoint); the count fills the cache.
    touched = touched.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        touched_users = touched.count()
        t = F.broadcast(touched)
        old_users = prev.read("users")
        derived = user_dimension(
            days.join(t, "user_id", "left_semi"), profiles.join(t, "user_id", "left_semi"),
            first_event_country(silver.join(t, "user_id", "left_semi")), rng, tz,
        )
        users = keep(derived.unionByName(carried_users(old_users.join(t, "user_id", "left_anti"), profiles, rng)))
    finally:  # a long-lived session (watch mode) keeps no cache of a failed run
        touched.unpersist()

    # Compare with the previous users: moved first-seen dates, changed attributes, changed last
    # activity. One aggregation (one Spark job) gives everything the comparison yields: the number
    # of users, the earliest moved first-seen date, the dates of the cohorts that gain or lose a
    # member or whose member's last activity moved, and the users whose attributes changed (their
    # ids only up to the listing limit: above it user_activity_daily is rewritten whole).
    o = old_users.select("user_id", *[F.col(c).alias(f"o_{c}") for c in (*ATTRIBUTES, "last_active_date")])
    cmp = o.join(users.select("user_id", *ATTRIBUTES, "last_active_date", F.lit(1).alias("_is_user")), "user_id", "full")
    same = lambda c: F.col(f"o_{c}").eqNullSafe(F.col(c))  # noqa: E731
    first_moved = ~same("first_seen_date")
    attrs_changed = F.col("o_first_seen_date").isNotNull() & ~(same("first_seen_date") & same("country") & same("gender") & same("age_group"))
    cohort_moved = first_moved | ~same("last_active_date")
    agg = cmp.agg(
        F.count("_is_user").alias("users"),
        F.min(F.when(first_moved, F.least("o_first_seen_date", "first_seen_date"))).alias("first_moved"),
        F.sum(F.when(attrs_changed, 1).otherwise(0)).alias("relisted"),
        F.array_union(F.collect_set(F.when(cohort_moved, F.col("o_first_seen_date"))),
                      F.collect_set(F.when(cohort_moved, F.col("first_seen_date")))).alias("moved_dates"),
        F.slice(F.collect_list(F.when(attrs_changed, F.col("user_id"))), 1, MAX_LISTED_USERS + 1).alias("relisted_ids"),
    ).collect()[0]
    trace("users derived and compared")
    since = min(d for d in (a0, agg["first_moved"]) if d is not None)
    if since <= rng.start:
        return Scope(full=True, reason=f"a first-seen date moved to or before the lake's first date {rng.start}"), None
    ret = cfg["retention"]
    funnel = cfg["funnel"]
    scope = Scope(full=False, since=since, rng=rng, new_events=st["n"],
                  funnel_since=funnel_rebuild_from(since, old.end, rng, int(funnel["window_days"])),
                  cohorts_since=max(rng.start, since - dt.timedelta(days=int(ret["max_day"]))),
                  touched_users=touched_users, relisted_users=int(agg["relisted"] or 0), users=int(agg["users"]))
    moved = {d for d in agg["moved_dates"] if d is not None and rng.start <= d <= rng.end}
    scope.extra_cohorts = sorted(d for d in moved if d < scope.cohorts_since)
    relisted = sorted(agg["relisted_ids"]) if scope.relisted_users <= MAX_LISTED_USERS else None

    trace("scope")
    # Inputs of the date tables.
    events = keep(events_since(min(scope.funnel_since, since)))
    ev = events.filter(F.col("activity_date") >= F.lit(since))
    active = ev.transform(active_only(excluded))
    money = active.transform(to_money)
    cal = keep(calendar(spark, DateRange(since, rng.end)))
    on_or_after = lambda c, d: f"{c} >= {_sql_date(d)}"  # noqa: E731
    from_since = on_or_after("activity_date", since)

    windows = {"wau": 7, "mau": 30}
    roll_start = max(rng.start, since - dt.timedelta(days=max(windows.values()) - 1))
    rolling = rolling_active(calendar(spark, DateRange(roll_start, rng.end)),
                               with_neighbours(days.filter(F.col("activity_date") >= F.lit(roll_start))), rng, windows)
    recent_days = days.filter(F.col("activity_date") >= F.lit(since))
    daily = keep(engagement_daily(cal, recent_days, rolling, users, ev))

    month0 = max(rng.start, since.replace(day=1))
    month_cal = calendar(spark, DateRange(month0, rng.end))
    month_days = days.filter(F.col("activity_date") >= F.lit(month0))
    month_dau = month_cal.join(month_days.groupBy("activity_date").agg(F.count(F.lit(1)).alias("dau")), "activity_date", "left").fillna(0, ["dau"])

    opening = prev.rows("loyalty_daily", ["outstanding_points"], [("activity_date", "=", since - dt.timedelta(days=1))])
    new_points = loyalty_events(new)
    balances = keep(add_loyalty_balances(prev.read("loyalty_balances"), loyalty_balances(new_points)))

    relabel = from_since if relisted is None or not relisted else f"({from_since} OR {_in('user_id', relisted)})"
    uad_days = days if relisted is None else days.filter(F.expr(relabel))
    users_base = users_table(users, balances)
    seg_users, segment_summary, cluster_profiles = segment_and_cluster(users_base, days, rng, cfg.get("segments"), cfg.get("clustering"))

    cohort_cal = calendar(spark, DateRange(scope.cohorts_since, rng.end))
    if scope.extra_cohorts:
        cohort_cal = cohort_cal.unionByName(local_frame(spark, [(d,) for d in scope.extra_cohorts], "activity_date date"))
    cohort_pred = on_or_after("cohort_date", scope.cohorts_since) + (
        f" OR {_in('cohort_date', scope.extra_cohorts)}" if scope.extra_cohorts else "")
    week0 = max(_monday(since) - dt.timedelta(weeks=int(ret["max_week"])), _monday(rng.start))
    weeks = sorted({_monday(d) for d in moved if _monday(d) < week0})
    week_cal = calendar(spark, DateRange(max(rng.start, week0), rng.end))
    if weeks:
        week_cal = week_cal.unionByName(local_frame(spark, [(max(w, rng.start),) for w in weeks], "activity_date date"))
    week_pred = on_or_after("cohort_week", week0) + (f" OR {_in('cohort_week', weeks)}" if weeks else "")
    week_members = users.filter(F.col("first_seen_date") >= F.lit(week0))
    if weeks:
        week_members = week_members.unionByName(users.filter(F.trunc("first_seen_date", "week").isin(weeks)))
    cohort_members = users.join(F.broadcast(cohort_cal.select(F.col("activity_date").alias("first_seen_date"))), "first_seen_date", "left_semi")

    # A new event name gets zero rows on every earlier date too (all its events are new, so >= since).
    event_counts = event_counts_daily(cal, ev, rng, sorted(names | set(new_names)))
    counts_pred = from_since
    if new_names:
        zeros = (calendar(spark, DateRange(rng.start, since - dt.timedelta(days=1)))
                 .withColumn("event", F.explode(F.array(*[F.lit(n) for n in new_names])))
                 .select("activity_date", "event", F.lit(0).cast("long").alias("events"), F.lit(0).cast("long").alias("users")))
        event_counts = event_counts.unionByName(zeros)
        counts_pred = f"({from_since} OR {_in('event', new_names)})"
    scope.new_event_names = new_names

    entries = keep(funnel_user_entries(events.transform(active_only(excluded)), rng.end, funnel["steps"],
                                         funnel["window_days"]))
    course_events = silver.filter(F.col("event") == "course_progress").select(*GOLD_EVENT_COLUMNS).transform(with_activity_date(tz))
    predicates = {
        "whole": None,
        "dates": from_since,
        "months": on_or_after("month", since.replace(day=1)),
        "funnel": on_or_after("activity_date", scope.funnel_since),
        "cohorts": cohort_pred,
        "weeks": week_pred,
        "event_dates": counts_pred,
        "relabel": None if relisted is None else relabel,
    }
    member_days = lambda members: days.join(F.broadcast(members.select("user_id")), "user_id", "left_semi")  # noqa: E731
    return scope, Rebuild(
        cfg=cfg, rng=rng, prev=prev, quarantine=quarantine, predicates=predicates,
        new=new, ev=ev, active=active, money=money, new_money=new.transform(active_only(excluded)).transform(to_money),
        cal=cal, users=users, daily=daily, recent_days=recent_days, month_days=month_days, month_dau=month_dau,
        lifecycle_neighbours=with_neighbours(days.filter(F.col("activity_date") >= F.lit(since - dt.timedelta(days=1)))),
        opening_points=opening[0]["outstanding_points"] if opening else 0, balances=balances, relabelled_days=uad_days,
        segmented=(seg_users, segment_summary, cluster_profiles),
        cohort_cal=cohort_cal, cohort_members=cohort_members, cohort_days=member_days(cohort_members),
        week_cal=week_cal, week_members=week_members, week_days=member_days(week_members),
        entries=entries, recent_sessions=sessions_since(since), event_counts=event_counts, course_events=course_events,
    )

def funnel_rebuild_from(since: dt.date, old_end: dt.date, rng: DateRange, window_days: int) -> dt.date:
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


def converter(spark: SparkSession, cfg: dict, rng: DateRange):
    """The transform putting purchases' amounts in the reporting currency over the range's dates."""
    rates = currency.rates_frame(spark, cfg, rng.start, rng.end).localCheckpoint(eager=True)
    return to_reporting_currency(rates, currency.reporting_currency(cfg))
