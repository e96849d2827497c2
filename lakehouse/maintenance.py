"""Lake maintenance: erase users (right to be forgotten) and compact/vacuum every table.

`forget` removes users from every layer, recomputes gold, then vacuums and *cuts the Delta
history* of every table it changed: old commits carry the ids (column min/max stats of `add`
actions, DELETE predicates in `commitInfo`, file lists in `.crc` checksums), so a new checkpoint
is written at the latest version and every older log file is deleted. Table identity, protocol,
properties and the idempotent-write markers (`txn` actions, kept in the checkpoint) stay intact,
versions keep increasing, and the tables stay readable by Spark and by delta-rs (plain v1
checkpoints, no deletion vectors). See docs/maintenance.md for the guarantees and the limits.

`maintain` compacts small files (OPTIMIZE, ZORDER BY on large tables) and vacuums every table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator
from urllib.parse import unquote

import pyarrow as pa
import pyspark.sql.functions as F
from deltalake import DeltaTable as RsTable
from deltalake import write_deltalake
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import StringType

from lakehouse import ops
from lakehouse.tables import BRONZE, GOLD, OPS, SILVER, Lake

# Spark tables forget deletes from (in this order), before gold is recomputed.
UPSTREAM = [f"bronze.{n}" for n in BRONZE] + [f"silver.{n}" for n in SILVER]
# Columns that hold a raw JSON text where an id shows up as a JSON string token.
JSON_TEXT_COLUMNS = ("value", "properties")
# Ops tables forget never rewrites: the ingest manifest (its paths decide what bronze re-reads)
# and the erasure log itself (hashes only).
OPS_KEPT = ("ops.ingest_files", "ops.erasures")
IDS_PER_PASS = 50
THREADS = 4
ERASED = "[erased]"

# Columns OPTIMIZE clusters by (ZORDER BY), for tables at least ZORDER_MIN_BYTES big; smaller
# tables are only bin-packed (a ZORDER rewrites the whole table every time).
ZORDER = {
    "bronze.events": ("batch_id",),
    "bronze.users": ("batch_id",),
    "silver.events": ("ts", "user_id"),
    "silver.sessions": ("session_start", "user_id"),
    "silver.quarantine": ("batch_id",),
    "gold.user_activity_daily": ("activity_date", "country"),
    "gold.users": ("country", "segment"),
    "gold.funnel_daily": ("activity_date", "device"),
    "gold.event_counts_daily": ("activity_date", "event"),
}
ZORDER_MIN_BYTES = 256 * 1024 * 1024


class MaintenanceError(RuntimeError):
    """A forget/maintain request that cannot run; the message says why."""


# ---------------------------------------------------------------- small helpers

def _sql_path(path: str) -> str:
    """`delta.\\`path\\`` for SQL statements."""
    return "delta.`" + path.replace("`", "``") + "`"


def _retention_hours(cfg: dict) -> int:
    hours = cfg.get("vacuum_retention_hours")
    if not isinstance(hours, int) or isinstance(hours, bool) or hours < 0:
        raise MaintenanceError(f"vacuum_retention_hours: must be a whole number >= 0, got {hours!r}")
    return hours


def _clean_ids(user_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(str(u).strip() for u in user_ids or []))
    if not ids or any(not u for u in ids):
        raise MaintenanceError("forget: give at least one non-empty user id")
    return ids


def id_hash(user_id: str) -> str:
    """What ops.erasures stores instead of the id: sha256 of the id's UTF-8 bytes, hex."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


def _java_regex_literal(text: str) -> str:
    """`text` quoted for a Java regex (Pattern.quote)."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def _hadoop(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _local(path: str) -> str | None:
    """The local file-system path of a lake location, or None for remote URIs."""
    if "://" in path and not path.startswith("file:"):
        return None
    return path.removeprefix("file://").removeprefix("file:")


def _live_files(uri: str) -> tuple[set[str], int]:
    """Paths (relative to the table, decoded) and total bytes of a table's live data files."""
    adds = pa.table(RsTable(uri).get_add_actions(flatten=True)).select(["path", "size_bytes"]).to_pydict()
    return {unquote(p) for p in adds["path"]}, int(sum(adds["size_bytes"]))


def _vacuum_candidates(spark: SparkSession, path: str, hours: int) -> int:
    """Data files VACUUM could delete: not live and older than the retention (0 = nothing to do).

    Files in folders or with names starting with `_` or `.` (the log, checksums) are Delta's own.
    Errs on the side of vacuuming: any file it cannot match counts as a candidate.
    """
    live, _ = _live_files(_rs_uri_of(path))
    root, fs = _hadoop(spark, path)
    if not fs.exists(root):
        return 0
    base = root.toUri().getPath().rstrip("/") + "/"
    cutoff_ms = (time.time() - hours * 3600) * 1000
    found = 0
    files = fs.listFiles(root, True)
    while files.hasNext():
        status = files.next()
        rel = status.getPath().toUri().getPath()
        rel = rel[len(base):] if rel.startswith(base) else rel
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if rel not in live and status.getModificationTime() < cutoff_ms:
            found += 1
    return found


def _rs_uri_of(path: str) -> str:
    return path.removeprefix("file://").removeprefix("file:")


@contextlib.contextmanager
def _small_listing_parallelism(spark: SparkSession) -> Iterator[None]:
    """VACUUM lists and deletes files with `spark.sql.sources.parallelPartitionDiscovery.parallelism`
    tasks, 10000 by default: 10000 near-empty tasks per VACUUM (~40 s on two cores, even for a
    one-file table). Unless the session sets it, use a few tasks per core while we run."""
    key = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    if spark.conf.get(key, None) not in (None, "10000"):
        yield
        return
    spark.conf.set(key, str(max(2, 2 * spark.sparkContext.defaultParallelism)))
    try:
        yield
    finally:
        spark.conf.unset(key)


def _existing(spark: SparkSession, lake: Lake, names: Iterable[str]) -> list[str]:
    return [n for n in names if lake.exists(spark, n)]


def _rs_uri(lake: Lake, name: str) -> str:
    return lake.path(name).removeprefix("file://").removeprefix("file:")


# ---------------------------------------------------------------- matching rows of a user

def _match(df: DataFrame, user_id: str) -> Column:
    """Rows that belong to or mention `user_id` as a whole token (never as a mere substring).

    * any string column equal to the id (user_id, but also e.g. a referrer id);
    * raw JSON text (`value`, `properties`): `$.user_id` equal to the id, or the id as a JSON
      string value anywhere in the line (`"u1"` matches, `"u12"` does not);
    * raw CSV profile lines (source_file *.csv / *.csv.gz): the id as one comma-separated field,
      optionally quoted.
    """
    strings = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    token = json.dumps(user_id, ensure_ascii=False)
    conds = [F.col(c) == F.lit(user_id) for c in strings]
    for c in JSON_TEXT_COLUMNS:
        if c in strings:
            conds.append(F.col(c).contains(token))
    if "value" in strings:
        conds.append(F.get_json_object("value", "$.user_id") == F.lit(user_id))
        if "source_file" in strings:
            is_csv = F.lower(F.col("source_file")).rlike(r"\.csv(\.gz)?$")
            field_re = r'(^|,)\s*"?' + _java_regex_literal(user_id) + r'"?\s*(,|$)'
            conds.append(is_csv & F.col("value").rlike(field_re))
    out = F.lit(False)
    for c in conds:
        out = out | F.coalesce(c, F.lit(False))
    return out


def _mentions(df: DataFrame, user_id: str) -> Column:
    """Rows with the id anywhere inside a string column (to report what token matching kept)."""
    out = F.lit(False)
    for f in df.schema.fields:
        if isinstance(f.dataType, StringType):
            out = out | F.coalesce(F.instr(F.col(f.name), user_id) > 0, F.lit(False))
    return out


def _any(conds: list[Column]) -> Column:
    out = F.lit(False)
    for c in conds:
        out = out | c
    return out


@dataclass
class _TableErasure:
    removed: int = 0
    per_user: dict = field(default_factory=dict)
    residual: int = 0


def _erase_from(spark: SparkSession, lake: Lake, name: str, ids: list[str]) -> _TableErasure:
    """Delete the users' rows from one Spark table (one counting pass, a DELETE only if needed)."""
    from delta.tables import DeltaTable

    result = _TableErasure(per_user={u: 0 for u in ids})
    path = lake.path(name)
    for start in range(0, len(ids), IDS_PER_PASS):
        chunk = ids[start:start + IDS_PER_PASS]
        df = lake.read(spark, name)
        matches = [_match(df, u) for u in chunk]
        hit = _any(matches)
        row = df.select(
            F.count_if(hit).alias("removed"),
            F.count_if(~hit & _any([_mentions(df, u) for u in chunk])).alias("residual"),
            *[F.count_if(m).alias(f"u{i}") for i, m in enumerate(matches)],
        ).collect()[0]
        result.residual += int(row["residual"])
        for i, u in enumerate(chunk):
            result.per_user[u] = int(row[f"u{i}"])
        if row["removed"]:
            DeltaTable.forPath(spark, path).delete(hit)
            result.removed += int(row["removed"])
    if result.removed and _deletion_vectors_enabled(lake, name):
        # Deletion vectors only hide rows: rewrite the files so that the rows are really gone.
        spark.sql(f"REORG TABLE {_sql_path(path)} APPLY (PURGE)")
    return result


def _deletion_vectors_enabled(lake: Lake, name: str) -> bool:
    try:
        conf = RsTable(_rs_uri(lake, name)).metadata().configuration
    except Exception:  # noqa: BLE001 - a remote lake delta-rs cannot open: assume plain files
        return False
    return str(conf.get("delta.enableDeletionVectors", "false")).lower() == "true"


# ---------------------------------------------------------------- cutting the Delta history

def _delete_log_before(spark: SparkSession, path: str, version: int) -> int:
    """Delete every `_delta_log` file of a version below `version` (commits, checksums, checkpoints)."""
    log, fs = _hadoop(spark, f"{path.rstrip('/')}/_delta_log")
    deleted = 0
    pending = [log]
    while pending:
        folder = pending.pop()
        for status in fs.listStatus(folder):
            if status.isDirectory():
                pending.append(status.getPath())  # _staged_commits, _sidecars
                continue
            m = re.match(r"^(\d{20})\.", status.getPath().getName())
            if m and int(m.group(1)) < version:
                fs.delete(status.getPath(), False)
                deleted += 1
    return deleted


def _cut_spark_history(spark: SparkSession, path: str, hours: int, erasure_id: str, ids: list[str]) -> int:
    """VACUUM, an id-free latest commit, a checkpoint there, then delete every older log file."""
    jvm = spark.sparkContext._jvm
    if _vacuum_candidates(spark, path, hours):
        spark.sql(f"VACUUM {_sql_path(path)} RETAIN {hours} HOURS")
    # The latest commit survives the cut: it must name no user (a DELETE records its predicate).
    latest = RsTable(_rs_uri_of(path)).history(1)
    if any(u in json.dumps(latest, default=str) for u in ids):
        spark.sql(f"ALTER TABLE {_sql_path(path)} SET TBLPROPERTIES ('lakehouse.last_erasure' = '{erasure_id}')")
    none = jvm.scala.Option.empty()
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    snapshot = delta_log.update(False, none, none)
    delta_log.checkpoint(snapshot, none)
    return _delete_log_before(spark, path, int(snapshot.version()))


def _cut_rs_history(spark: SparkSession, uri: str, hours: int) -> int:
    """The same for a delta-rs (ops) table."""
    table = RsTable(uri)
    table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True)
    table = RsTable(uri)
    table.create_checkpoint()
    return _delete_log_before(spark, uri, table.version())


def _log_mentions(lake: Lake, names: Iterable[str], ids: list[str]) -> list[str]:
    """Tables whose remaining `_delta_log` files still hold an id in clear (local lakes only)."""
    import os

    found = []
    needles = [u.encode("utf-8") for u in ids]
    for name in names:
        folder = _local(f"{lake.path(name)}/_delta_log")
        if folder is None or not os.path.isdir(folder):
            continue
        for dirpath, _, files in os.walk(folder):
            for f in files:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    data = fh.read()
                if any(n in data for n in needles):
                    found.append(name)
                    break
            else:
                continue
            break
    return found


# ---------------------------------------------------------------- ops tables

def _redact_ops(lake: Lake, ids: list[str]) -> tuple[list[str], dict]:
    """Replace the ids inside ops rows (e.g. samples in ops.expectations); report the kept paths."""
    redacted, kept = [], {}
    for short in OPS:
        name = f"ops.{short}"
        try:
            table = RsTable(_rs_uri(lake, name))
        except TableNotFoundError:
            continue
        data = table.to_pyarrow_table()
        strings = [f.name for f in data.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        rows = data.to_pylist()
        hits = [r for r in rows if any(r[c] and u in r[c] for c in strings for u in ids)]
        if not hits:
            continue
        if name in OPS_KEPT:
            kept[name] = len(hits)
            continue
        for r in rows:
            for c in strings:
                if r[c]:
                    for u in ids:
                        r[c] = r[c].replace(u, ERASED)
        write_deltalake(_rs_uri(lake, name), pa.Table.from_pylist(rows, schema=data.schema), mode="overwrite")
        redacted.append(name)
    return redacted, kept


# ---------------------------------------------------------------- forget

def _stopwatch(progress: Callable[[str], None] | None) -> Callable[[str], None]:
    """`progress` with the seconds since the previous message appended (a no-op when None)."""
    last = [time.perf_counter()]

    def say(message: str) -> None:
        if progress is not None:
            now = time.perf_counter()
            progress(f"{message} ({now - last[0]:.1f}s)")
            last[0] = now
    return say


def forget(spark: SparkSession, cfg: dict, lake_root: str, user_ids: list[str],
           progress: Callable[[str], None] | None = None) -> str:
    """Erase users from every layer of the lake and from its history; returns a one-paragraph summary."""
    from lakehouse import gold as gold_step
    from lakehouse.pipeline import lake_lock

    ids = _clean_ids(user_ids)
    hours = _retention_hours(cfg)
    lake = Lake(lake_root)
    if not _existing(spark, lake, UPSTREAM + [f"gold.{n}" for n in GOLD]):
        raise MaintenanceError(f"no lakehouse tables found in {lake_root}")
    erasure_id = uuid.uuid4().hex[:16]
    requested_at = ops.now()
    started = time.perf_counter()
    say = _stopwatch(progress)
    per_table: dict[str, _TableErasure] = {}
    status = "failed"
    with lake_lock(lake_root, wait=True):
        try:
            spark_tables = [n for n in sorted(lake_names(spark, lake)) if not n.startswith("ops.")]
            before = {n: ops.table_version(lake, n) for n in spark_tables}

            for name in _existing(spark, lake, UPSTREAM):
                per_table[name] = _erase_from(spark, lake, name, ids)
                say(f"{name}: {per_table[name].removed} rows removed")
            upstream_removed = sum(r.removed for r in per_table.values())

            rebuilt: set[str] = set()
            if upstream_removed:
                rebuilt = {f"gold.{n}" for n in gold_step.run(spark, lake, cfg, txn_version=None)}
                say(f"gold: {len(rebuilt)} tables recomputed")
            for name in _existing(spark, lake, [f"gold.{n}" for n in GOLD]):
                if name not in rebuilt and "user_id" in {f.name for f in RsTable(_rs_uri(lake, name)).schema().fields}:
                    per_table[name] = _erase_from(spark, lake, name, ids)

            redacted_ops, kept_ops = _redact_ops(lake, ids)
            touched = [n for n in spark_tables if ops.table_version(lake, n) != before[n]]
            with _small_listing_parallelism(spark), ThreadPoolExecutor(max_workers=THREADS) as pool:
                list(pool.map(lambda n: _cut_spark_history(spark, lake.path(n), hours, erasure_id, ids), touched))
                list(pool.map(lambda n: _cut_rs_history(spark, _rs_uri(lake, n), hours), redacted_ops))
            say(f"history cut in {len(touched) + len(redacted_ops)} tables")
            spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
            in_log = _log_mentions(lake, touched + redacted_ops, ids)
            residual = {n: r.residual for n, r in per_table.items() if r.residual}
            status = "completed" if not (residual or in_log or kept_ops) else "completed_with_residuals"
        finally:
            _log_erasure(lake, erasure_id, requested_at, ids, per_table, status)

    return _forget_summary(ids, erasure_id, hours, per_table, rebuilt, touched, redacted_ops, kept_ops,
                           residual, in_log, time.perf_counter() - started)


def lake_names(spark: SparkSession, lake: Lake) -> list[str]:
    """Every registered table that exists in the lake."""
    from lakehouse.tables import REGISTRY

    out = []
    for name in sorted(REGISTRY):
        if name.startswith("ops."):
            if ops.table_version(lake, name) is not None:
                out.append(name)
        elif lake.exists(spark, name):
            out.append(name)
    return out


def _log_erasure(lake: Lake, erasure_id: str, requested_at: dt.datetime, ids: list[str],
                 per_table: dict, status: str) -> None:
    """One ops.erasures row per user: the id's hash (never the id), rows removed per table, status."""
    done = ops.now()
    ops.append(lake, "ops.erasures", [{
        "erasure_id": erasure_id, "requested_at": requested_at, "completed_at": done,
        "user_id_hash": id_hash(u),
        "rows_removed_json": json.dumps({n: r.per_user.get(u, 0) for n, r in sorted(per_table.items())}, sort_keys=True),
        "status": status,
    } for u in ids])


def _forget_summary(ids, erasure_id, hours, per_table, rebuilt, touched, redacted_ops, kept_ops,
                    residual, in_log, seconds) -> str:
    removed = ", ".join(f"{n} {r.removed}" for n, r in per_table.items())
    found = sum(1 for u in ids if any(r.per_user.get(u) for r in per_table.values()))
    parts = [f"Forgot {len(ids)} user{'s' if len(ids) != 1 else ''} (erasure {erasure_id}, logged in ops.erasures "
             f"by sha256 of the id; {found} of them had rows in the lake). Rows removed: {removed or 'none'}."]
    if rebuilt:
        parts.append(f"Recomputed {len(rebuilt)} gold tables from the cleaned silver.")
    if redacted_ops:
        parts.append(f"Replaced the ids by {ERASED} in {', '.join(redacted_ops)}.")
    parts.append(f"Vacuumed (retention {hours} h) and cut the Delta history of {len(touched) + len(redacted_ops)} "
                 "tables, so earlier versions can no longer be read.")
    if hours > 0 and touched:
        parts.append(f"The files that held the removed rows stay on disk, unreferenced, until they are {hours} h old: "
                     "run `lakehouse maintain` after that to delete them.")
    if residual:
        parts.append("Rows that mention an id inside a longer string were kept (check them by hand): "
                     + ", ".join(f"{n} {k}" for n, k in residual.items()) + ".")
    if kept_ops:
        parts.append("Kept on purpose: " + ", ".join(f"{n} {k} rows" for n, k in kept_ops.items())
                     + " mention an id (landing file paths).")
    if in_log:
        parts.append("The Delta log of " + ", ".join(in_log) + " still holds an id: check it by hand.")
    parts.append("Outside the lake: delete these users' lines from the landing files yourself "
                 f"(files already ingested are never read again). Took {seconds:.0f}s.")
    return " ".join(parts)


# ---------------------------------------------------------------- maintain

@dataclass
class _Maintained:
    name: str
    before: int
    after: int
    action: str
    vacuumed: int


def _vacuumed_files(uri: str) -> int:
    """Files deleted by the table's latest commit when it is a VACUUM END (else 0)."""
    latest = RsTable(uri).history(1)
    if not latest or latest[0].get("operation") != "VACUUM END":
        return 0
    return int((latest[0].get("operationMetrics") or {}).get("numDeletedFiles", 0) or 0)


def _maintain_spark(spark: SparkSession, lake: Lake, name: str, hours: int) -> _Maintained:
    path, uri = lake.path(name), _rs_uri(lake, name)
    live, size = _live_files(uri)
    before, action, vacuumed = len(live), "kept", 0
    if before > 1:
        columns = {f.name for f in RsTable(uri).schema().fields}
        zorder = [c for c in ZORDER.get(name, ()) if c in columns]
        if zorder and size >= ZORDER_MIN_BYTES:
            spark.sql(f"OPTIMIZE {_sql_path(path)} ZORDER BY ({', '.join(zorder)})")
            action = "zordered by " + ", ".join(zorder)
        else:
            spark.sql(f"OPTIMIZE {_sql_path(path)}")
            action = "compacted"
    if _vacuum_candidates(spark, path, hours):
        spark.sql(f"VACUUM {_sql_path(path)} RETAIN {hours} HOURS")
        vacuumed = _vacuumed_files(uri)
    return _Maintained(name, before, len(_live_files(uri)[0]), action, vacuumed)


def _maintain_rs(spark: SparkSession, lake: Lake, name: str, hours: int) -> _Maintained:
    """An ops table, with delta-rs (its writer): compact, vacuum, checkpoint, expire old log files."""
    uri = _rs_uri(lake, name)
    table = RsTable(uri)
    before = len(table.file_uris())
    action, vacuumed = "kept", 0
    if before > 1:
        table.optimize.compact()
        action = "compacted"
    candidates = _vacuum_candidates(spark, lake.path(name), hours)
    if candidates:
        RsTable(uri).vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True)
        vacuumed = candidates - _vacuum_candidates(spark, lake.path(name), hours)
    if action != "kept" or vacuumed:
        table = RsTable(uri)
        table.create_checkpoint()
        table.cleanup_metadata()
    return _Maintained(name, before, len(RsTable(uri).file_uris()), action, vacuumed)


def maintain(spark: SparkSession, cfg: dict, lake_root: str, progress: Callable[[str], None] | None = None) -> str:
    """Compact small files and vacuum every Delta table of the lake; returns a summary."""
    from lakehouse.pipeline import lake_lock

    hours = _retention_hours(cfg)
    lake = Lake(lake_root)
    started = time.perf_counter()
    with lake_lock(lake_root, wait=True):
        names = lake_names(spark, lake)
        if not names:
            raise MaintenanceError(f"no lakehouse tables found in {lake_root}")

        say = _stopwatch(progress)

        def one(name: str) -> _Maintained:
            done = _maintain_rs(spark, lake, name, hours) if name.startswith("ops.") else _maintain_spark(spark, lake, name, hours)
            say(f"{name}: {done.before} -> {done.after} files")
            return done

        with _small_listing_parallelism(spark), ThreadPoolExecutor(max_workers=THREADS) as pool:
            done = list(pool.map(one, names))
    lines = [f"Maintained {len(done)} tables (vacuum retention {hours} h) in {time.perf_counter() - started:.0f}s; "
             f"live data files before -> after:"]
    for m in done:
        lines.append(f"  {m.name}: {m.before} -> {m.after} ({m.action}; {m.vacuumed} unreferenced files deleted)")
    return "\n".join(lines)
