"""Silver step: turn each committed bronze batch into typed, deduplicated silver rows.

Batches are processed one at a time, in order. Every write is idempotent (Delta txn keyed on
the batch id) and the batch is marked done in `ops.progress` last, so a killed run replays
the batch and lands on exactly the same tables.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import SparkSession

from lakehouse import ops
from lakehouse.tables import Lake
from lakehouse.transforms import silver as T
from lakehouse.transforms.sessions import SECONDS, sessionize

Step = Callable[[str], None]


@dataclass
class SilverResult:
    """What one silver step did, summed over the batches it processed."""

    batches: list = field(default_factory=list)
    events_added: int = 0
    duplicates: int = 0
    profiles_valid: int = 0
    profile_headers: int = 0
    profile_continuation_lines: int = 0  # lines after the first of multi-line CSV records (valid or quarantined)
    quarantined: Counter = field(default_factory=Counter)
    sessions: int = 0


def done_batches(lake: Lake, layer: str) -> int:
    """The last batch id a layer has fully processed (0 when none)."""
    return max((r["batch_id"] for r in ops.read(lake, "ops.progress") if r["layer"] == layer), default=0)


def mark_done(lake: Lake, layer: str, batch_id: int) -> None:
    """Record that `layer` has processed everything up to `batch_id`."""
    ops.append(lake, "ops.progress", [{"layer": layer, "batch_id": batch_id, "completed_at": ops.now()}])


def _events_batch(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, result: SilverResult,
                  lap: Step = lambda _: None) -> int:
    bronze = lake.read(spark, "bronze.events").filter(F.col("batch_id") == batch_id)
    # The raw text is not cached: quarantined lines (few) are taken back from bronze by line id.
    parsed = (bronze.transform(T.parse_events(cfg["max_line_bytes"], cfg["max_future_skew_hours"]))
              .drop("value", "value_bytes").persist(StorageLevel.MEMORY_AND_DISK))
    reasons = {r["reason"]: r["n"] for r in parsed.groupBy(F.col("_error").alias("reason")).agg(F.count(F.lit(1)).alias("n")).collect()}
    valid = reasons.pop(None, 0)
    lap(f"batch {batch_id} events parsed")
    events = T.first_copy_per_event_id(T.valid_events(parsed))
    if lake.exists(spark, "silver.events"):
        events = events.transform(T.drop_known_event_ids(lake.read(spark, "silver.events")))
    version = ops.table_version(lake, "silver.events")
    lake.write(events, "silver.events", mode="append", txn=("silver.events", batch_id))
    if ops.table_version(lake, "silver.events") != version:
        added = ops.last_commit_rows(lake, "silver.events")
    else:  # replay: the batch had been written before the run was killed
        added = lake.read(spark, "silver.events").filter(F.col("batch_id") == batch_id).count()
    lap(f"batch {batch_id} events written")
    if reasons:
        lake.write(T.quarantined(T.with_raw_lines(parsed, bronze), "events"), "silver.quarantine", mode="append",
                   txn=("silver.quarantine.events", batch_id))
        lap(f"batch {batch_id} quarantine written")
    parsed.unpersist()
    result.events_added += added
    result.duplicates += valid - added
    result.quarantined.update({f"events:{k}": v for k, v in reasons.items()})
    return added


def _profiles_batch(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, result: SilverResult) -> None:
    bronze = lake.read(spark, "bronze.users").filter(F.col("batch_id") == batch_id)
    parsed = bronze.transform(T.parse_profiles(str(cfg["email_salt"]), cfg["max_line_bytes"])).persist(StorageLevel.MEMORY_AND_DISK)
    counts = parsed.groupBy(F.col("_error").alias("reason")).agg(F.count(F.lit(1)).alias("n"), F.sum("_lines").alias("lines")).collect()
    reasons = {r["reason"]: r["n"] for r in counts}  # records (profiles), each valid or quarantined whole
    record_lines = sum(r["lines"] for r in counts)
    valid = reasons.pop(None, 0)
    current = lake.read_or_empty(spark, "silver.users", T.SILVER_USERS_SCHEMA)
    merged = T.latest_profiles(current, parsed)
    lake.write(merged.coalesce(1), "silver.users", mode="overwrite", txn=("silver.users", batch_id))
    if reasons:
        lake.write(T.quarantined(parsed, "users"), "silver.quarantine", mode="append", txn=("silver.quarantine.users", batch_id))
    headers = bronze.count() - record_lines  # the lines of CSV header records
    parsed.unpersist()
    result.profiles_valid += valid
    result.profile_headers += headers
    result.profile_continuation_lines += record_lines - valid - sum(reasons.values())
    result.quarantined.update({f"users:{k}": v for k, v in reasons.items()})


def _sessions(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int):
    """silver.sessions after `batch_id`: the sessions of users with events in the batch are derived
    again from all their events; every other user's sessions are kept as they are.

    A user's sessions depend on that user's events only, so this equals a full rebuild.
    """
    cut = sessionize(cfg["session_gap_minutes"], tuple(cfg["excluded_events"]))
    events = lake.read(spark, "silver.events")
    if not lake.exists(spark, "silver.sessions"):
        return events.transform(cut)
    if dict(lake.read(spark, "silver.sessions").dtypes).get("duration_s") != SECONDS:
        # Sessions written before lengths and gaps kept sub-second precision: derive them all again.
        return events.transform(cut)
    touched = F.broadcast(events.filter(F.col("batch_id") == batch_id).select("user_id").distinct())
    fresh = events.join(touched, "user_id", "left_semi").transform(cut)
    kept = lake.read(spark, "silver.sessions").join(touched, "user_id", "left_anti")
    return kept.unionByName(fresh)


def process(spark: SparkSession, lake: Lake, cfg: dict, bronze_batches: list[int],
            on_step: Callable[[str, float], None] | None = None) -> SilverResult:
    """Process every committed bronze batch silver has not finished, updating sessions after each.

    `on_step(name, seconds)` is called as each sub-step of a batch ends (parse, write, profiles, sessions).
    """
    result = SilverResult()
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        if on_step is not None:
            on_step(name, now - mark[0])
        mark[0] = now

    last = done_batches(lake, "silver")
    feeds = ops.batch_feeds(lake)  # which feeds each batch landed files for (no Spark job)
    for batch_id in [b for b in bronze_batches if b > last]:
        added = 0
        if "events" in feeds.get(batch_id, ()):
            added = _events_batch(spark, lake, cfg, batch_id, result, lap)
        if "users" in feeds.get(batch_id, ()):
            _profiles_batch(spark, lake, cfg, batch_id, result)
            lap(f"batch {batch_id} profiles")
        if lake.exists(spark, "silver.events") and (added or not lake.exists(spark, "silver.sessions")):
            lake.write(_sessions(spark, lake, cfg, batch_id), "silver.sessions", mode="overwrite", txn=("silver.sessions", batch_id))
            lap(f"batch {batch_id} sessions")
        mark_done(lake, "silver", batch_id)
        result.batches.append(batch_id)
    return result
