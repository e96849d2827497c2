"""Silver step: turn each committed bronze batch into typed, deduplicated silver rows.

Batches are processed one at a time, in order. Every write is idempotent (Delta txn keyed on
the batch id) and the batch is marked done in `ops.progress` last, so a killed run replays
the batch and lands on exactly the same tables.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from lakehouse import ops
from lakehouse.config import small_writes, tuned, whole_table_conf
from lakehouse.sources import options_for
from lakehouse.tables import Lake, kept_rows, release_rows
from lakehouse.transforms import silver as T
from lakehouse.transforms import sources as S
from lakehouse.transforms.common import local_frame
from lakehouse.transforms.sessions import Reach, new_events_reach, outside_reach, reached_events, sessionize

MAX_DROPPED_TIES = 8  # ties one batch may drop for closing a cycle; ids of cycles beyond keep their own ids
IDENTITIES_SCHEMA = ("anonymous_id string, user_id string, tied_at timestamp, source string, source_file string, "
                     "batch_id long, line_id long, part int, moved_events long")

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


def _small(cfg: dict, rows: int | None) -> bool:
    """Whether a write of `rows` rows goes through the driver (`Lake.write`'s `small`): at most
    `small_writes.silver_max_rows` (0 = never; None, an unknown count, = no)."""
    return rows is not None and rows <= small_writes(cfg)["silver_max_rows"]


def done_batches(lake: Lake, layer: str) -> int:
    """The last batch id a layer has fully processed (0 when none)."""
    return max((r["batch_id"] for r in ops.read(lake, "ops.progress") if r["layer"] == layer), default=0)


def mark_done(lake: Lake, layer: str, batch_id: int) -> None:
    """Record that `layer` has processed everything up to `batch_id`."""
    ops.append(lake, "ops.progress", [{"layer": layer, "batch_id": batch_id, "completed_at": ops.now()}])


@dataclass
class Mapped:
    """One batch's records of sources other than the landing, mapped onto the contract."""

    events: DataFrame | None = None  # mapped event records (value: contract JSON, raw_value: as landed)
    profiles: DataFrame | None = None  # mapped profile records, the same layout
    ties: DataFrame | None = None  # identity ties (lakehouse.transforms.sources.IDENTITY_COLUMNS)
    cached: list = field(default_factory=list)


def _map_sources(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, kinds: dict[str, set]) -> Mapped:
    """Map the batch's bronze records of segment, csv and jdbc sources (`kinds`: feed -> {(name, kind)})."""
    out = Mapped()

    def add(attr: str, frame: DataFrame) -> None:
        current = getattr(out, attr)
        setattr(out, attr, frame if current is None else current.unionByName(frame))

    for feed in ("events", "users"):
        pairs = kinds.get(feed, set())
        if not pairs or pairs == {("landing", "landing")}:
            continue
        bronze = lake.read_pinned(spark, f"bronze.{feed}", holding=("batch_id", batch_id)).filter(F.col("batch_id") == batch_id)
        has_source = "source" in bronze.columns
        for name, kind in sorted(pairs):
            rows = bronze.filter(F.coalesce(F.col("source"), F.lit("landing")) == name) if has_source else bronze
            rows = T.with_raw_bytes(rows).select(*S.BRONZE_COLUMNS)
            options = options_for(cfg, name, kind)
            if kind == "segment":
                calls = S.segment_calls(rows).persist(StorageLevel.MEMORY_AND_DISK)
                out.cached.append(calls)
                add("events", calls.transform(S.segment_events(options.get("renames"), options.get("page_event", "page_view"))))
                add("profiles", calls.transform(S.segment_profiles()))
                add("ties", calls.transform(S.identity_ties(name)))
            elif kind == "csv":
                mapped = T.csv_file_records(rows).transform(S.csv_contract(feed, options.get(feed), name))
                add("events" if feed == "events" else "profiles", mapped.drop("_lines"))
            elif kind == "jdbc":  # a database row as JSON, mapped column by column as a CSV record
                add("events", rows.transform(S.jdbc_contract("events", options.get("events"), name)).drop("_lines"))
            elif feed == "events":
                add("events", S.as_mapped(rows))
    return out


def _identity_map(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, ties: DataFrame | None):
    """Record the batch's new identity claims; returns (resolved map, changed map, moved events) or None.

    The first tie to arrive claims an anonymous id (within a batch, the earliest); a tie that would
    close a cycle, or make a chain longer than MAX_IDENTITY_HOPS, is dropped (the latest such tie
    first). `resolved` maps every claimed id to its final user; `changed` holds the ids whose
    final user this batch set or moved; `moved` counts their earlier silver events (re-keyed next).
    """
    exists = ops.table_version(lake, "silver.identities") is not None  # delta-rs: no Spark job
    if ties is None:
        return (S.resolve_identities(lake.read(spark, "silver.identities")), None, 0) if exists else None
    table = lake.read_or_empty(spark, "silver.identities", IDENTITIES_SCHEMA)
    earlier = table.filter(F.col("batch_id") < batch_id).select(*S.IDENTITY_COLUMNS)
    before = S.resolve_identities(earlier)
    fresh = S.first_claims(ties.join(earlier.select("anonymous_id"), "anonymous_id", "left_anti")).localCheckpoint()
    if fresh.isEmpty():
        return (before, None, 0) if exists else None
    for _ in range(MAX_DROPPED_TIES):
        after = S.resolve_identities(earlier.unionByName(fresh)).localCheckpoint()
        lost = fresh.join(after, "anonymous_id", "left_anti")  # claimed, yet resolving to no user: a cycle
        latest = lost.orderBy(F.col("tied_at").desc_nulls_first(), F.col("source_file").desc(),
                              F.col("line_id").desc(), F.col("part").desc()).limit(1).collect()
        if not latest:
            break
        fresh = fresh.filter(~((F.col("line_id") == latest[0]["line_id"]) & (F.col("part") == latest[0]["part"])
                               & (F.col("source_file") == latest[0]["source_file"]))).localCheckpoint()
    changed = after.join(before, ["anonymous_id", "user_id"], "left_anti").localCheckpoint()
    recorded = table.filter(F.col("batch_id") == batch_id).agg(F.max("moved_events")).collect()[0][0]
    if recorded is None:
        events = lake.read_or_empty(spark, "silver.events", "user_id string, batch_id long")
        moved = events.join(F.broadcast(changed.select(F.col("anonymous_id").alias("user_id"))), "user_id", "left_semi").count()
        lake.write(fresh.withColumn("moved_events", F.lit(moved).cast("long")), "silver.identities", mode="append",
                   txn=("silver.identities", batch_id), small=_small(cfg, fresh.count()))
    else:  # replay of a batch whose ties were recorded before the run was killed: re-key as recorded
        moved = recorded
    return after, changed, moved


def _rekey(spark: SparkSession, lake: Lake, changed: DataFrame, batch_id: int) -> None:
    """Give the earlier silver events of newly tied ids their user (and this batch, so the next
    steps treat them as new). Idempotent: a re-keyed row no longer matches."""
    from delta.tables import DeltaTable

    if not lake.exists(spark, "silver.events"):
        return
    (DeltaTable.forPath(spark, lake.path("silver.events")).alias("e")
     .merge(F.broadcast(changed).alias("c"), "e.user_id = c.anonymous_id")
     .whenMatchedUpdate(set={"user_id": "c.user_id", "batch_id": F.lit(batch_id).cast("long")})
     .execute())


def _resolve(df: DataFrame, resolved: DataFrame | None) -> DataFrame:
    """`user_id` replaced by the user an anonymous id is tied to (unchanged when not tied)."""
    if resolved is None:
        return df
    m = resolved.select(F.col("anonymous_id").alias("user_id"), F.col("user_id").alias("_resolved"))
    cols = [F.coalesce("_resolved", "user_id").alias("user_id") if c == "user_id" else F.col(c) for c in df.columns]
    return df.join(m, "user_id", "left").select(*cols)


def _events_batch(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, result: SilverResult,
                  lap: Step = lambda _: None, mapped: DataFrame | None = None, resolved: DataFrame | None = None) -> int:
    # Pinned: the batch's files picked from the log's statistics by delta-rs (no Spark job).
    bronze = lake.read_pinned(spark, "bronze.events", holding=("batch_id", batch_id)).filter(F.col("batch_id") == batch_id)
    if mapped is not None:  # records of other sources, mapped; quarantined ones keep the raw record
        bronze = mapped.drop("raw_value")
        raw = mapped.withColumn("value", F.col("raw_value")).drop("raw_value", "map_reason")
    # The raw text is not kept: quarantined lines (few) are taken back from bronze by line id.
    parsed = kept_rows(bronze.transform(T.parse_events(cfg["max_line_bytes"], cfg["max_future_skew_hours"]))
                       .drop("value", "value_bytes"))
    reasons = {r["reason"]: r["n"] for r in parsed.groupBy(F.col("_error").alias("reason")).agg(F.count(F.lit(1)).alias("n")).collect()}
    valid = reasons.pop(None, 0)
    lap(f"batch {batch_id} events parsed")
    events = T.first_copy_per_event_id(T.valid_events(parsed)).transform(lambda df: _resolve(df, resolved))
    if lake.exists(spark, "silver.events"):
        events = events.transform(T.drop_known_event_ids(lake.read_pinned(spark, "silver.events")))
    lake.keep_order("silver.events")  # a table from before its layout: the properties, before the version below
    version = ops.table_version(lake, "silver.events")
    lake.write(events, "silver.events", mode="append", txn=("silver.events", batch_id), small=_small(cfg, valid))
    if ops.table_version(lake, "silver.events") != version:
        added = ops.last_commit_rows(lake, "silver.events")
    else:  # replay: the batch had been written before the run was killed
        added = lake.read(spark, "silver.events").filter(F.col("batch_id") == batch_id).count()
    lap(f"batch {batch_id} events written")
    if reasons:
        lake.write(T.quarantined(T.with_raw_lines(parsed, bronze if mapped is None else raw), "events"), "silver.quarantine", mode="append",
                   txn=("silver.quarantine.events", batch_id), small=_small(cfg, sum(reasons.values())))
        lap(f"batch {batch_id} quarantine written")
    release_rows(parsed)
    result.events_added += added
    result.duplicates += valid - added
    result.quarantined.update({f"events:{k}": v for k, v in reasons.items()})
    return added


def _profiles_batch(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, result: SilverResult,
                    landing: bool = True, mapped: DataFrame | None = None, resolved: DataFrame | None = None) -> None:
    """Merge the batch's profiles into silver.users: the landing's (`landing`) and mapped ones."""
    parse = T.parse_profiles(str(cfg["email_salt"]), cfg["max_line_bytes"])
    frames = [mapped.transform(parse)] if mapped is not None else []
    if landing:
        bronze = lake.read_pinned(spark, "bronze.users", holding=("batch_id", batch_id)).filter(F.col("batch_id") == batch_id)
        if "source" in bronze.columns:
            bronze = bronze.filter(F.coalesce(F.col("source_kind"), F.lit("landing")) == "landing")
        frames.insert(0, T.with_raw_bytes(bronze).select(*S.BRONZE_COLUMNS).transform(parse))
    if not frames:  # only ids newly tied: the profiles already in silver are re-keyed
        frames = [local_frame(spark, [], T.SILVER_USERS_SCHEMA).transform(_as_parsed)]
    parsed = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    parsed = kept_rows(_resolve(parsed, resolved))
    counts = parsed.groupBy(F.col("_error").alias("reason")).agg(F.count(F.lit(1)).alias("n"), F.sum("_lines").alias("lines")).collect()
    reasons = {r["reason"]: r["n"] for r in counts}  # records (profiles), each valid or quarantined whole
    record_lines = sum(r["lines"] for r in counts)
    valid = reasons.pop(None, 0)
    current = _resolve(lake.read_or_empty(spark, "silver.users", T.SILVER_USERS_SCHEMA), resolved)
    merged = T.latest_profiles(current, parsed)
    known = ops.live_rows(lake, "silver.users")  # from the log's statistics: no Spark job
    lake.write(merged.coalesce(1), "silver.users", mode="overwrite", txn=("silver.users", batch_id),
               small=_small(cfg, None if known is None else known + valid))
    if reasons:
        lake.write(T.quarantined(parsed, "users"), "silver.quarantine", mode="append", txn=("silver.quarantine.users", batch_id),
                   small=_small(cfg, sum(reasons.values())))
    # the lines of the landing's CSV header records (mapped records count their own lines)
    headers = (bronze.count() if landing else 0) + (mapped.count() if mapped is not None else 0) - record_lines
    release_rows(parsed)
    result.profiles_valid += valid
    result.profile_headers += headers
    result.profile_continuation_lines += record_lines - valid - sum(reasons.values())
    result.quarantined.update({f"users:{k}": v for k, v in reasons.items()})


def _as_parsed(users: DataFrame) -> DataFrame:
    """silver.users rows in the layout of parsed profiles (no reason, one line each)."""
    return users.select("*", F.lit(None).cast("string").alias("_error"), F.lit(1).alias("_lines"),
                        F.lit(None).cast("timestamp").alias("file_modified_at"), F.lit(None).cast("long").alias("line_id"))


def sessions_settings(cfg: dict) -> str:
    """The settings silver.sessions is cut with (`session_gap_minutes`, `excluded_events`), as JSON."""
    return json.dumps({"session_gap_minutes": cfg["session_gap_minutes"],
                       "excluded_events": sorted(cfg["excluded_events"])}, sort_keys=True)


def sessions_stale(spark: SparkSession, lake: Lake, cfg: dict) -> bool:
    """Whether silver.sessions exists but was last cut whole with other settings, or before they
    were recorded (`ops.silver_state`, delta-rs, no Spark job): it must then be cut again whole."""
    rows = ops.read(lake, "ops.silver_state")
    if not rows:
        return lake.exists(spark, "silver.sessions")
    return max(rows, key=lambda r: r["recorded_at"])["sessions_settings"] != sessions_settings(cfg)


def _sessions(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int, gone: DataFrame | None, cached: list,
              whole: bool = False):
    """silver.sessions after `batch_id`, or None when the batch changes no session: (the whole table,
    None, None), or (the rows from a start on, that start in microseconds since the epoch, the
    sessions cut again). Equals cutting every session again from all of silver.events.

    Usually only the sessions the batch's events can reach are cut again (`new_events_reach`: whole
    client sessions, and each user's derived sessions from shortly before their first new event),
    and only the rows from the earliest start among them on are replaced (`session_start >= ...`;
    the table is laid out in start order, so Delta rewrites the newest files only). When earlier
    events were re-keyed (`gone`: anonymous ids whose events now belong to a user, `user_id`
    column), the sessions of the batch's users are derived again from all their events and the
    table is rewritten whole in start order. With `whole` (no table yet, or cut with other
    settings: `sessions_stale`), every session is cut again. Frames it caches are added to `cached`.
    """
    gap, excluded = cfg["session_gap_minutes"], tuple(cfg["excluded_events"])
    cut = sessionize(gap, excluded)
    # Pinned reads: the live files listed once by delta-rs (no Spark job per scan, see Lake.read_pinned).
    events = lake.read_pinned(spark, "silver.events")
    if whole or not lake.exists(spark, "silver.sessions"):
        return events.transform(cut).orderBy("session_start"), None, None
    old = lake.read_pinned(spark, "silver.sessions")
    new = events.filter(F.col("batch_id") == batch_id)
    if gone is not None:
        touched = new.select("user_id").distinct()
        fresh = events.join(F.broadcast(touched), "user_id", "left_semi").transform(cut)
        dropped = touched.unionByName(gone.select("user_id")).distinct()
        return old.join(F.broadcast(dropped), "user_id", "left_anti").unionByName(fresh).orderBy("session_start"), None, None
    reach = new_events_reach(gap, excluded)(new, old)
    # Checkpointed lazily: the broadcasts of the cut below compute them once, and the kept sessions'
    # join (`outside_reach`) reads them back instead of deriving them from silver again.
    reach = Reach(reach.clients.localCheckpoint(eager=False), reach.since.localCheckpoint(eager=False))
    fresh = events.transform(reached_events(reach)).transform(cut).persist(StorageLevel.MEMORY_AND_DISK)
    cached.append(fresh)
    first, rows = fresh.agg(F.min(F.unix_micros("session_start")), F.count(F.lit(1))).collect()[0]
    if first is None:
        return None
    window = (old.filter(F.expr(f"session_start >= TIMESTAMP'{_timestamp_text(first)}'"))
              .transform(outside_reach(reach)).unionByName(fresh))
    return window.coalesce(1).sortWithinPartitions("session_start"), first, rows


def _write_sessions(spark: SparkSession, lake: Lake, cfg: dict, batch_id: int | None, gone: DataFrame | None,
                    cached: list, whole: bool) -> None:
    """Update silver.sessions for `batch_id` (`_sessions`); a whole cut records its settings.

    A whole table is rewritten through delta-rs from the driver when silver.events holds at most
    `small_writes.silver_max_rows` rows (sessions are never more than events; `Lake.write`'s
    `small`). Rows from a start on replace those of the table (one commit): through delta-rs from the driver
    when the rows written stay within the same bound (counted from the table's file stats:
    the log replay and Delta DELETE of a Spark replaceWhere cost several Spark jobs), else Spark.
    """
    sessions = _sessions(spark, lake, cfg, batch_id, gone, cached, whole)
    if sessions is None:
        return
    frame, first, rows = sessions
    txn = ("silver.sessions", batch_id) if batch_id is not None else None
    if first is None:  # rewritten whole: there are at most as many sessions as silver events
        lake.write(frame, "silver.sessions", mode="overwrite", txn=txn, small=_small(cfg, ops.live_rows(lake, "silver.events")))
    elif lake.is_local and _small(cfg, None if (kept := _kept_rows_from(lake, first)) is None else rows + kept):
        lake.write_small(frame, "silver.sessions", txn=txn, predicate=f"session_start >= '{_timestamp_text(first)}'")
    else:
        lake.write(frame, "silver.sessions", mode="overwrite", txn=txn,
                   replace_where=f"session_start >= TIMESTAMP'{_timestamp_text(first)}'")
    if whole:
        ops.append(lake, "ops.silver_state", [{"batch_id": batch_id, "sessions_settings": sessions_settings(cfg),
                                               "recorded_at": ops.now()}])


def _kept_rows_from(lake: Lake, micros: int) -> int | None:
    """At most the silver.sessions rows starting at `micros` or later (file statistics, no Spark job)."""
    at = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=micros - 1000)
    return ops.live_rows(lake, "silver.sessions", reaching=("session_start", at))


def refresh_sessions(spark: SparkSession, lake: Lake, cfg: dict) -> bool:
    """Cut silver.sessions again whole when it was cut with other settings (`sessions_stale`), so a
    full refresh of gold reads sessions of the current settings; whether it did."""
    if not (lake.exists(spark, "silver.events") and sessions_stale(spark, lake, cfg)):
        return False
    _write_sessions(spark, lake, cfg, None, None, [], whole=True)
    return True


def _timestamp_text(micros: int) -> str:
    """`micros` since the epoch as ISO 8601 text in UTC, exact to the microsecond (for an SQL literal,
    Spark's or delta-rs's, read the same whatever the session's time zone)."""
    at = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)
    return f"{at:%Y-%m-%dT%H:%M:%S.%f}+00:00"


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
    stale = sessions_stale(spark, lake, cfg)  # cut with other settings: cut again whole with the next batch
    sources = ops.batch_sources(lake)  # which feeds and sources each batch landed files for (no Spark job)
    for batch_id in [b for b in bronze_batches if b > last]:
        kinds = sources.get(batch_id, {})
        m = _map_sources(spark, lake, cfg, batch_id, kinds)
        identity = _identity_map(spark, lake, cfg, batch_id, m.ties)
        resolved, changed, moved = identity if identity else (None, None, 0)
        if moved:
            _rekey(spark, lake, changed, batch_id)
            lap(f"batch {batch_id} {moved} earlier events re-keyed to their users")
        added = 0
        if "events" in kinds:
            added = _events_batch(spark, lake, cfg, batch_id, result, lap, m.events, resolved)
        landing_profiles = ("landing", "landing") in kinds.get("users", ())
        if landing_profiles or m.profiles is not None or changed is not None:
            _profiles_batch(spark, lake, cfg, batch_id, result, landing_profiles, m.profiles, resolved)
            lap(f"batch {batch_id} profiles")
        if lake.exists(spark, "silver.events"):
            whole = stale or not lake.exists(spark, "silver.sessions")
            if added or moved or whole:
                gone = changed.select(F.col("anonymous_id").alias("user_id")) if moved else None
                with tuned(spark, whole_table_conf(cfg, ops.live_rows(lake, "silver.events"))):
                    _write_sessions(spark, lake, cfg, batch_id, gone, m.cached, whole)
                stale = False
                lap(f"batch {batch_id} sessions")
        for frame in m.cached:
            frame.unpersist()
        mark_done(lake, "silver", batch_id)
        result.batches.append(batch_id)
    return result
