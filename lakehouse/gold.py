"""Gold step: compute the gold tables from silver, check them, and publish them.

Every table is declared once in `lakehouse.catalog`: a full build calls each entry's `full`
builder on the prepared inputs of all of silver (`FullInputs`); an incremental run (the default
once gold exists, `lakehouse.gold_incremental`) calls each entry's `rebuild` on the rows the new
data can reach. The expectations are checked on the tables as they will be after the write, and
nothing is published when a `fail` rule fails. Tables are written concurrently.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Mapping

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from lakehouse import currency, ops, quality
from lakehouse.catalog import GOLD_TABLES, MONEY_TABLES
from lakehouse.config import expectations_path
from lakehouse.gold_incremental import (
    GOLD_EVENT_COLUMNS,
    Previous,
    Scope,
    converter,
    incremental,
    read_sessions,
)
from lakehouse.progress import trace
from lakehouse.tables import GOLD, Lake, one_partition, rdd_mark, release_since, to_arrow_together
from lakehouse.transforms.common import DateRange, active_only, calendar, date_range_and_names, local_frame, sessions_per_day, user_days, with_activity_date, with_neighbours
from lakehouse.transforms.engagement import engagement_daily, rolling_active
from lakehouse.transforms.funnel import funnel_user_entries
from lakehouse.transforms.loyalty import loyalty_balances, loyalty_events
from lakehouse.transforms.segments import segment_and_cluster
from lakehouse.transforms.silver import SILVER_USERS_SCHEMA
from lakehouse.transforms.users import first_event_country, user_dimension, users_table

# Bump when a change to the gold transforms changes their results: the next run rebuilds in full.
GOLD_LOGIC_VERSION = "6"  # 6: exact total_session_seconds, funnel window flag; 5: session gaps and lengths to the microsecond; 4: money in the reporting currency at ECB rates; 3: k-means on the driver

# The config sections gold depends on: a change to any of them makes the next run rebuild in full.
GOLD_SETTINGS = ("timezone", "excluded_events", "demographics", "funnel", "retention", "segments", "clustering",
                 "session_gap_minutes", "reporting_currency", "currency_rates_file")


@dataclass
class FullInputs:
    """The prepared frames of a full build; each catalogue entry's `full` builder reads these.

    The shared intermediates several tables use (`daily`, `balances`, `segmented`, `entries`) are
    computed once, on first use.
    """

    events: DataFrame
    active: DataFrame
    days: DataFrame
    neighbours: DataFrame
    users: DataFrame
    sessions: DataFrame
    cal: DataFrame
    rng: DateRange
    quarantine: DataFrame
    cfg: dict
    money: DataFrame | None = None  # active events with amounts in the reporting currency
    cached: list = field(default_factory=list)
    names: list = field(default_factory=list)  # every event name in silver, sorted (ops.gold_state)

    @cached_property
    def daily(self) -> DataFrame:
        """gold.engagement_daily (cached: loyalty_daily and engagement_monthly read it too)."""
        rolling = rolling_active(self.cal, self.neighbours, self.rng, {"wau": 7, "mau": 30})
        daily = engagement_daily(self.cal, self.days, rolling, self.users, self.events).persist(StorageLevel.MEMORY_AND_DISK)
        self.cached.append(daily)
        return daily

    @cached_property
    def points(self) -> DataFrame:
        """Loyalty point events."""
        return loyalty_events(self.events)

    @cached_property
    def balances(self) -> DataFrame:
        """gold.loyalty_balances (gold.users carries each user's balance)."""
        return loyalty_balances(self.points)

    @cached_property
    def segmented(self) -> tuple[DataFrame, DataFrame, DataFrame]:
        """(gold.users, gold.segment_summary, gold.cluster_profiles): one segmentation and clustering."""
        cfg = self.cfg
        return segment_and_cluster(users_table(self.users, self.balances), self.days, self.rng,
                                   cfg.get("segments"), cfg.get("clustering"))

    @cached_property
    def entries(self) -> DataFrame:
        """Funnel entries once, for funnel_entries and funnel_daily; windows judged at the range's end."""
        funnel = self.cfg["funnel"]
        return funnel_user_entries(self.active, self.rng.end, funnel["steps"], funnel["window_days"]).localCheckpoint(eager=True)

    def tables(self) -> dict[str, tuple[DataFrame, None]]:
        """{name: (frame, None)}: every catalogue table, built whole."""
        return {t.name: (t.full(self), None) for t in GOLD_TABLES}

    def release(self) -> None:
        """Drop the cached intermediates, newest first (see `run`)."""
        for df in reversed(self.cached):
            df.unpersist()


def prepare(spark: SparkSession, events: DataFrame, profiles: DataFrame, sessions: DataFrame,
            quarantine: DataFrame, cfg: dict) -> FullInputs | None:
    """Shared intermediates, or None when silver holds no active event yet."""
    tz = cfg["timezone"]
    excluded = tuple(cfg["excluded_events"])
    # Only the columns gold reads: the raw properties text and lineage columns stay in silver.
    events = events.select(*GOLD_EVENT_COLUMNS).transform(with_activity_date(tz)).persist(StorageLevel.MEMORY_AND_DISK)
    active = events.transform(active_only(excluded))
    rng, names = date_range_and_names(events, excluded)  # one job for both (it also fills the cache)
    if rng is None:
        events.unpersist()
        return None
    # The intermediates are materialised with their lineage cut (small plans downstream, see
    # `gold_incremental`); the events stay a columnar cache (the largest frame).
    money = active.transform(converter(spark, cfg, rng))
    days = user_days(money, sessions_per_day(sessions, tz)).localCheckpoint(eager=True)
    neighbours = with_neighbours(days).localCheckpoint(eager=True)
    users = user_dimension(days, profiles, first_event_country(events), rng, tz).localCheckpoint(eager=True)
    cal = calendar(spark, rng).localCheckpoint(eager=True)
    return FullInputs(events, active, days, neighbours, users, sessions, cal, rng, quarantine, cfg, money=money,
                      cached=[events], names=names)


def with_reporting_currency(name: str, df: DataFrame, cfg: dict) -> DataFrame:
    """A money table with the `reporting_currency` column (other tables unchanged)."""
    if name not in MONEY_TABLES:
        return df
    return df.withColumn("reporting_currency", F.lit(currency.reporting_currency(cfg)))


def settings_fingerprint(cfg: dict) -> str:
    """A hash of what gold's results depend on besides data: its settings, rules and logic version."""
    settings = {k: cfg.get(k) for k in GOLD_SETTINGS}
    text = json.dumps([GOLD_LOGIC_VERSION, settings, currency.fingerprint(cfg)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode() + expectations_path().read_bytes()).hexdigest()[:16]


def last_state(lake: Lake, batch_id: int) -> dict | None:
    """The ops.gold_state row the gold run that completed `batch_id` recorded, if any."""
    rows = [r for r in ops.read(lake, "ops.gold_state") if r["batch_id"] == batch_id]
    return max(rows, key=lambda r: r["recorded_at"]) if rows else None


def record_state(lake: Lake, batch_id: int, fingerprint: str, rng: DateRange, names, scope: Scope) -> None:
    """Remember what the next incremental run starts from: table versions, range, event names."""
    versions = {name: ops.table_version(lake, f"gold.{name}") for name in GOLD}
    ops.append(lake, "ops.gold_state", [{
        "batch_id": batch_id, "fingerprint": fingerprint, "range_start": rng.start.isoformat(),
        "range_end": rng.end.isoformat(), "event_names_json": json.dumps(sorted(names)),
        "versions_json": json.dumps(versions, sort_keys=True), "mode": "full" if scope.full else "incremental",
        "since": None if scope.full else scope.since.isoformat(), "recorded_at": ops.now(),
    }])


def _large(lake: Lake, name: str, version: int, min_rows: int) -> bool:
    """Whether the table (at `version`) holds more than `min_rows` rows, from its Delta log.

    A large table gets only its rebuilt rows replaced (Delta replaceWhere); a smaller one is
    rewritten whole, kept rows included: a delete-and-insert costs more Spark jobs than a small file.
    """
    from deltalake import DeltaTable

    table = DeltaTable(lake.rs_uri(f"gold.{name}"), version=version, storage_options=lake.rs_options)
    actions = table.get_add_actions(flatten=True)
    rows = actions.column("num_records").to_pylist() if "num_records" in actions.schema.names else []
    return sum(r or 0 for r in rows) > min_rows


# ---------------------------------------------------------------- publishing

def publish(lake: Lake, tables: dict[str, tuple[DataFrame, str | None]], txn_version: int | None,
            threads: int = 4, on_table: Callable[[str, float], None] | None = None,
            small: Mapping[str, int] | None = None, max_cells: int = 4_000_000) -> list[str]:
    """Write each gold table: the whole table, or (with a predicate) the rows it replaces; the names written.

    Idempotent when `txn_version` is given: a retried run skips the tables it had already written.
    Tables named in `small` (name -> rows; whole-table writes of a few thousand rows) are fetched
    from Spark together, as few Arrow fetches as `max_cells` allows (`tables.to_arrow_together`,
    usually one Spark job for all of them), and committed by delta-rs from the driver
    (`Lake.write_small`), instead of a Spark Delta write's several jobs each; the other tables
    are written by Spark meanwhile. `on_table(name, seconds)` is called from the writing thread
    after each table's write (a small table's seconds include an even share of the shared fetch).
    """
    small = dict(small or {})

    def txn(name: str) -> tuple[str, int] | None:
        return (f"gold.{name}", txn_version) if txn_version else None

    fetched: dict = {}
    share = [0.0]

    def _write(item):
        name, (df, predicate) = item
        start = time.perf_counter()
        if name in small and predicate is None:
            # A table in `fetched` was fetched because txn_done said it was not written yet.
            lake.write_small(fetched[name] if name in fetched else one_partition(df), f"gold.{name}", txn=txn(name),
                             txn_checked=name in fetched)
        else:
            lake.write(one_partition(df), f"gold.{name}", mode="overwrite", replace_where=predicate, txn=txn(name))
        if on_table is not None:
            on_table(name, time.perf_counter() - start + (share[0] if name in fetched else 0.0))
        return name

    # A retried run does not fetch the small tables it had already committed.
    together = {n: one_partition(df) for n, (df, pred) in tables.items()
                if n in small and pred is None and not (txn(n) and lake.txn_done(f"gold.{n}", txn(n)))}
    items = sorted(tables.items())
    with ThreadPoolExecutor(max_workers=threads) as pool:
        spark_writes = [pool.submit(_write, item) for item in items if item[0] not in together]
        start = time.perf_counter()
        fetched.update(to_arrow_together(together, small, max_cells) if together else {})
        share[0] = (time.perf_counter() - start) / max(1, len(fetched))
        small_writes = [pool.submit(_write, item) for item in items if item[0] in together]
        return sorted(f.result() for f in spark_writes + small_writes)


def table_rows(lake: Lake, names) -> dict[str, int]:
    """Rows each gold table's latest commit wrote (the rebuilt rows of an incremental run; no scan)."""
    return {name: ops.last_commit_rows(lake, f"gold.{name}") for name in sorted(names)}


def empty_quarantine(spark: SparkSession) -> DataFrame:
    """An empty silver.quarantine frame."""
    return local_frame(spark, [], "feed string, reason string, value string, source_file string, batch_id long, ingested_at timestamp")


def read_silver(spark: SparkSession, lake: Lake) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """silver.events, users, sessions and quarantine (empty frames where a table is missing)."""
    events = lake.read_pinned(spark, "silver.events")
    profiles = lake.read_or_empty(spark, "silver.users", SILVER_USERS_SCHEMA, pinned=True)
    quarantine = lake.read_pinned(spark, "silver.quarantine") if lake.exists(spark, "silver.quarantine") else empty_quarantine(spark)
    return events, profiles, read_sessions(spark, lake), quarantine.select("feed", "reason")


@dataclass
class GoldRun:
    """What a gold run published: rows written per table and what it recomputed."""

    rows: dict
    recomputed: str


def moved_by_identity(lake: Lake, after_batch: int) -> int:
    """Earlier silver events that batches after `after_batch` re-keyed to a user (an anonymous id
    tied late: lakehouse.silver), from silver.identities' log and rows (delta-rs, no Spark job)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        rows = DeltaTable(lake.rs_uri("silver.identities"), storage_options=lake.rs_options).to_pyarrow_table(columns=["batch_id", "moved_events"]).to_pylist()
    except TableNotFoundError:
        return 0
    return max((r["moved_events"] or 0 for r in rows if r["batch_id"] > after_batch), default=0)


def run(spark: SparkSession, lake: Lake, cfg: dict, txn_version: int | None, run_id: str = "manual",
        after_batch: int | None = None, on_table: Callable[[str, float], None] | None = None) -> GoldRun:
    """Build gold from silver, check the expectations on the resulting tables, then publish.

    Incremental when `after_batch` (the last silver batch gold has seen) has a recorded gold state
    with the same settings, else (and always when `txn_version` is None: a forced full refresh) a
    full build. A failing `fail` rule raises before anything is published, so readers keep the
    previous gold.
    """
    trace("start")
    mark = rdd_mark(spark)
    rules = {k: v for k, v in quality.load_rules(expectations_path()).items() if k.startswith("gold.")}
    if not lake.exists(spark, "silver.events"):
        return GoldRun({}, "nothing (silver holds no events)")
    trace("rules loaded")
    fingerprint = settings_fingerprint(cfg)
    events, profiles, sessions, quarantine = read_silver(spark, lake)
    state = last_state(lake, after_batch) if (txn_version is not None and after_batch) else None
    trace("silver and state read")
    x = None
    try:
        if txn_version is None:
            scope = Scope(full=True, reason="full refresh requested")
        elif state is None:
            scope = Scope(full=True, reason="no earlier gold run to build on")
        elif state["fingerprint"] != fingerprint:
            scope = Scope(full=True, reason="settings, rules or gold logic changed since the last gold run")
        elif moved_by_identity(lake, after_batch):
            scope = Scope(full=True, reason=f"{moved_by_identity(lake, after_batch)} earlier events moved to the users their anonymous ids were tied to")
        else:
            prev = Previous(spark, lake, json.loads(state["versions_json"]))
            scope, rebuild = incremental(spark, lake, cfg, state, after_batch, quarantine, prev)
            tables = rebuild.tables() if rebuild is not None else {}
        if scope.full:
            x = prepare(spark, events, profiles, sessions, quarantine, cfg)
            if x is None:
                return GoldRun({}, "nothing (silver holds no active event)")
            scope.rng = x.rng
            tables = x.tables()
            names = x.names
        else:
            names = set(json.loads(state["event_names_json"])) | set(scope.new_event_names)
        tables = {n: (with_reporting_currency(n, df, cfg), pred) for n, (df, pred) in tables.items()}
        trace("planned")
        # Each table in one partition, as a lazy local checkpoint: the check's one job computes and
        # keeps it, the write reads it, and the check's and the publish's plans start from a short
        # leaf instead of the table's whole plan (analysing the union of every table's full plan
        # was the largest cost of a small run: warm 30x10 gold 17-20 s -> 13.5-16 s,
        # docs/performance.md "Checkpointed gold tables"). One partition before checkpointing: a
        # coalesce over it later would be a no-op (tables.one_partition).
        frames = {f"gold.{n}": df.coalesce(1).localCheckpoint(eager=False) for n, (df, _) in tables.items()}
        min_rows = int((cfg.get("gold") or {}).get("replace_where_min_rows", 200_000))
        # Rules judge each table as it will be after the write: the rows kept plus the rows rebuilt.
        checked = dict(frames)
        large = {n for n, (_, pred) in tables.items() if pred is not None and _large(lake, n, prev.versions[n], min_rows)}
        for n, (_, pred) in tables.items():
            if pred is not None:
                kept = prev.read(n).filter(~F.expr(pred))
                checked[f"gold.{n}"] = kept.unionByName(frames[f"gold.{n}"])
                if n not in large:
                    checked[f"gold.{n}"] = checked[f"gold.{n}"].coalesce(1).localCheckpoint(eager=False)
        result = quality.apply(checked, rules, run_id)
        trace("tables computed and checked")
        ops.append(lake, "ops.expectations", result.results)
        quality.raise_on_failure(result)
        out = {}
        for n, (_, pred) in tables.items():
            df = result.tables[f"gold.{n}"]
            if n in large:
                out[n] = (df.filter(F.expr(pred)), pred)  # replace just the rebuilt rows
            else:
                out[n] = (df, None)  # a small table: rewriting it whole is cheaper than a Delta DELETE
        # Small whole tables go through delta-rs (fewer Spark jobs); sizes come from the check's counts.
        small_max = int((cfg.get("gold") or {}).get("small_table_max_rows", 200_000))
        small = {n: result.rows[f"gold.{n}"] for n, (_, pred) in out.items()
                 if pred is None and lake.is_local and result.rows.get(f"gold.{n}", small_max + 1) <= small_max}
        max_cells = int((cfg.get("gold") or {}).get("small_fetch_max_cells", 4_000_000))
        written = publish(lake, out, txn_version, on_table=on_table, small=small, max_cells=max_cells)
        trace("published")
        from lakehouse import silver as silver_step

        record_state(lake, silver_step.done_batches(lake, "silver"), fingerprint, scope.rng, names, scope)
        trace("state recorded")
    finally:
        if x is not None:
            x.release()
        # The run's local checkpoints and caches, dropped now rather than at the JVM's next full
        # garbage collection (a failed run's too: a long-lived session keeps no blocks of it).
        release_since(spark, mark)
    trace("released")
    rows = table_rows(lake, written)
    trace("rows counted")
    return GoldRun(rows, scope.describe(len(written)))
