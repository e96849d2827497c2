"""Gold step: compute every gold table from silver and publish them.

Shared intermediates (active events, user-days, the user dimension) are computed once and
cached; tables are then written concurrently (Spark runs jobs from several threads).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from lakehouse import ops, quality
from lakehouse.config import expectations_path
from lakehouse.tables import Lake
from lakehouse.transforms import gold as G
from lakehouse.transforms import product as P
from lakehouse.transforms import segments as S


# The silver.events columns any gold table reads.
GOLD_EVENT_COLUMNS = (
    "event_id", "event", "ts", "user_id", "device", "country", "page", "amount", "payment_status",
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
    cached: list = field(default_factory=list)

    def release(self) -> None:
        """Drop the cached intermediates."""
        for df in self.cached:
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
    days = G.user_days(active, G.sessions_per_day(sessions, tz)).persist(StorageLevel.MEMORY_AND_DISK)
    neighbours = G.with_neighbours(days).persist(StorageLevel.MEMORY_AND_DISK)
    users = G.user_dimension(days, profiles, G.first_event_country(events), rng, tz).persist(StorageLevel.MEMORY_AND_DISK)
    cal = G.calendar(spark, rng).persist()
    return GoldInputs(events, active, days, neighbours, users, sessions, cal, rng, quarantine, cfg,
                      cached=[events, days, neighbours, users, cal])


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
    users = users.persist(StorageLevel.MEMORY_AND_DISK)
    x.cached.append(users)
    return {
        "users": lambda: users,
        "segment_summary": lambda: segment_summary,
        "cluster_profiles": lambda: cluster_profiles,
        "retention_daily": lambda: P.retention_daily(x.cal, x.users, x.days, x.rng, cfg["retention"]["max_day"]),
        "retention_weekly": lambda: P.retention_weekly(x.cal, x.users, x.days, x.rng, cfg["retention"]["max_week"]),
        "funnel_daily": lambda: P.funnel_daily(x.active, funnel["steps"], funnel["window_days"]),
        "revenue_daily": lambda: P.revenue_daily(x.cal, x.active, x.days),
        "user_revenue": lambda: P.user_revenue(x.active),
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


def publish(lake: Lake, tables: dict[str, Callable[[], DataFrame]], txn_version: int | None,
            threads: int = 4) -> list[str]:
    """Overwrite each gold table (idempotently when `txn_version` is given); the names written."""

    def _write(item):
        name, thunk = item
        df = thunk().coalesce(1)
        lake.write(df, f"gold.{name}", mode="overwrite", txn=(f"gold.{name}", txn_version) if txn_version else None)
        return name

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(_write, sorted(tables.items())))


def table_rows(lake: Lake, names) -> dict[str, int]:
    """Rows of each published gold table, from its latest Delta commit (no scan)."""
    return {name: ops.last_commit_rows(lake, f"gold.{name}") for name in sorted(names)}


def empty_quarantine(spark: SparkSession) -> DataFrame:
    """An empty silver.quarantine frame."""
    return spark.createDataFrame([], "feed string, reason string, value string, source_file string, batch_id long, ingested_at timestamp")


def read_silver(spark: SparkSession, lake: Lake) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """silver.events, users, sessions and quarantine (empty frames where a table is missing)."""
    from lakehouse.silver import _silver_users_schema

    events = lake.read(spark, "silver.events")
    profiles = lake.read_or_empty(spark, "silver.users", _silver_users_schema())
    sessions = lake.read_or_empty(
        spark, "silver.sessions",
        "user_id string, session_id string, session_start timestamp, session_end timestamp, events long, duration_s long, is_derived boolean",
    )
    quarantine = lake.read(spark, "silver.quarantine") if lake.exists(spark, "silver.quarantine") else empty_quarantine(spark)
    return events, profiles, sessions, quarantine.select("feed", "reason")


def run(spark: SparkSession, lake: Lake, cfg: dict, txn_version: int | None, run_id: str = "manual") -> dict[str, int]:
    """Build gold from the current silver, check the expectations, then publish; rows per table.

    A failing `fail` rule raises before anything is published, so readers keep the previous gold.
    """
    rules = {k: v for k, v in quality.load_rules(expectations_path()).items() if k.startswith("gold.")}
    if not lake.exists(spark, "silver.events"):
        return {}
    x = prepare(spark, *read_silver(spark, lake), cfg)
    if x is None:
        return {}
    frames: dict[str, DataFrame] = {}
    try:
        frames = {f"gold.{name}": thunk().persist(StorageLevel.MEMORY_AND_DISK) for name, thunk in build(x).items()}
        result = quality.apply(frames, rules, run_id)
        ops.append(lake, "ops.expectations", result.results)
        quality.raise_on_failure(result)
        written = publish(lake, {n.split(".", 1)[1]: (lambda df=df: df) for n, df in result.tables.items()}, txn_version)
    finally:
        for df in frames.values():
            df.unpersist()
        x.release()
    return table_rows(lake, written)
