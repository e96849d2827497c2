"""Lake maintenance: `forget` erases users (right to be forgotten), `maintain` compacts and vacuums.

Spark rewrites the data of Spark tables (DELETE, gold recomputation, OPTIMIZE). The bookkeeping of
every table (vacuum, checkpoint, log trimming) goes through delta-rs in-process: milliseconds per
table instead of several Spark jobs. Guarantees and limits: docs/maintenance.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import operator
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pyarrow as pa
import pyspark.sql.functions as F
from deltalake import DeltaTable as RsTable
from deltalake import write_deltalake
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import BinaryType, StringType

from lakehouse import catalog, gold, ops
from lakehouse.lock import lake_lock
from lakehouse.objectstore import storage_options
from lakehouse.session import layer_settings, tuned
from lakehouse.tables import BRONZE, GOLD, ORDERED, REGISTRY, SILVER, Lake, absolute, is_local
from lakehouse.transforms import silver as silver_transforms

UPSTREAM = [f"bronze.{n}" for n in BRONZE] + [f"silver.{n}" for n in SILVER]
GOLD_TABLES = [f"gold.{n}" for n in GOLD]
# Ops tables forget never rewrites: the ingest manifest (its paths decide what bronze re-reads)
# and the erasure log (hashes only).
OPS_KEPT = ("ops.ingest_files", "ops.erasures")
IDS_PER_PASS = 50  # ids matched per scan of a table (keeps the Spark plan small)
THREADS = 4
ERASED = "[erased]"

# OPTIMIZE clusters these tables with ZORDER BY once they reach maintenance.zorder_min_mb: bronze
# and quarantine by the batch silver reads, silver by what analysts filter on, gold by the
# dashboard's filters (each gold table's `zorder` in lakehouse.catalog). Smaller tables are only
# bin-packed (a ZORDER rewrites the whole table). Tables kept in order (tables.ORDERED,
# silver.events by time) are always clustered by their column: bin-packing would lose the order.
ZORDER = {
    "bronze.events": ("batch_id",),
    "bronze.users": ("batch_id",),
    "silver.quarantine": ("batch_id",),
    # By start only: each batch replaces the sessions from a start time on (lakehouse.silver), and
    # files laid out by start keep that rewrite to the newest ones.
    "silver.sessions": ("session_start",),
    **{f"gold.{t.name}": t.zorder for t in catalog.GOLD_TABLES if t.zorder},
}


# Files a compaction of a table kept in order writes (silver.events at 10M events: 3 of about 120 MB).
ORDERED_FILE_BYTES = 128 * 1024 * 1024


class MaintenanceError(RuntimeError):
    """A forget/maintain request that cannot run; the message says what to fix."""


# ---------------------------------------------------------------- settings and checks

def _whole(value, name: str) -> int:
    """`value` when it is a whole number >= 0; else a one-line error naming the setting."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MaintenanceError(f"{name}: must be a whole number >= 0, got {value!r}")
    return value


def retention_hours(cfg: dict) -> int:
    """`vacuum_retention_hours`: how long VACUUM keeps files no longer referenced."""
    return _whole(cfg.get("vacuum_retention_hours"), "vacuum_retention_hours")


def setting(cfg: dict, key: str) -> int:
    """A whole-number key of the `maintenance` section of the config."""
    return _whole((cfg.get("maintenance") or {}).get(key), f"maintenance.{key}")


def check_settings(cfg: dict) -> None:
    """Fail in one line on a maintenance setting forget/maintain cannot use."""
    retention_hours(cfg)
    for key in ("max_files_per_table", "zorder_min_mb"):
        setting(cfg, key)


def check_ids(user_ids: Iterable[str] | None) -> list[str]:
    """The ids stripped and de-duplicated; refuses an empty list or an empty id."""
    ids = list(dict.fromkeys(str(u).strip() for u in user_ids or []))
    if not ids or not all(ids):
        raise MaintenanceError("give at least one non-empty --user-id")
    return ids


def erasure_hash(cfg: dict, user_id: str) -> str:
    """What ops.erasures stores instead of an id: sha256 of email_salt + id (like email_hash)."""
    return hashlib.sha256(f"{cfg['email_salt']}{user_id}".encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- tables

def _lake_tables(lake: Lake) -> list[str]:
    """Every registered table that exists in the lake (read from the logs, no Spark job)."""
    return [n for n in sorted(REGISTRY) if ops.table_version(lake, n) is not None]


def existing_tables(lake_root: str) -> list[str]:
    """The lake's tables; an error naming the folder when it holds none."""
    lake = Lake(lake_root)
    names = _lake_tables(lake)
    if not names:
        raise MaintenanceError(f"no lakehouse tables found in {lake.root} (check --lake, or run `lakehouse run` first)")
    return names


def _rs(uri: str) -> RsTable:
    """A table opened by delta-rs, with the object store's storage options when it is not local."""
    return RsTable(uri, storage_options=storage_options(uri))


def _files(uri: str) -> tuple[int, int]:
    """Number and total bytes of a table's live data files."""
    sizes = pa.table(_rs(uri).get_add_actions(flatten=True)).column("size_bytes").to_pylist()
    return len(sizes), sum(sizes)


def _each(fn: Callable, names: list[str]) -> dict:
    """{name: fn(name)}, four tables at a time (Spark runs jobs from several threads)."""
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return dict(zip(names, pool.map(fn, names)))


def _vacuum(uri: str, hours: int) -> int:
    """Delete the data files unreferenced for more than `hours` (and Hadoop's `.crc` sidecars); how many.

    delta-rs also lists tombstones of files already deleted: on a local lake only files on disk count.
    """
    local = is_local(uri)
    found = _rs(uri).vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True)
    found = [f for f in found if not local or os.path.exists(os.path.join(uri, f))]
    if found:
        _rs(uri).vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True)
    if local:
        for f in found:
            folder, name = os.path.split(os.path.join(uri, f))
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, f".{name}.crc"))
    return len(found)


def _sql_path(lake: Lake, name: str) -> str:
    """delta.`<path>` for Spark SQL; a local lake's path made absolute (Delta takes delta.`...` for a
    path only when it is absolute, so `--lake demo/lake` would read as a missing table)."""
    return "delta.`" + absolute(lake.path(name)).replace("`", "``") + "`"


# ---------------------------------------------------------------- forget: matching and deleting

def _java_quote(text: str) -> str:
    """`text` as a literal inside a Java regex."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def _matches(df: DataFrame, user_id: str) -> Column:
    """Rows that hold `user_id` as a whole value, never as a mere substring (`u1` is not `u12`).

    Any string column equal to the id; in raw lines (`value`, `properties`, the original bytes
    `value_bytes`) the JSON string `"<id>"` or `$.user_id`, and in CSV files the id as one field.
    """
    strings = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    raw = [F.col(c) for c in ("value", "properties") if c in strings]
    raw += [F.col(f.name).cast("string") for f in df.schema.fields if isinstance(f.dataType, BinaryType)]
    token = json.dumps(user_id, ensure_ascii=False)
    conds = [F.col(c) == F.lit(user_id) for c in strings] + [text.contains(token) for text in raw]
    if "value" in strings:
        conds.append(F.get_json_object("value", "$.user_id") == F.lit(user_id))
    if "source_file" in strings:
        is_csv = F.lower(F.col("source_file")).rlike(r"\.csv(\.gz)?$")
        one_field = r'(^|,)\s*"?' + _java_quote(user_id) + r'"?\s*(,|$)'
        conds += [is_csv & text.rlike(one_field) for text in raw]
    return functools.reduce(operator.or_, [F.coalesce(c, F.lit(False)) for c in conds])


def _erase(spark: SparkSession, lake: Lake, name: str, ids: list[str]) -> dict[str, int]:
    """Delete the users' rows from one Spark table; rows matched per id (one count scan, one DELETE)."""
    from delta.tables import DeltaTable

    counts = {}
    for start in range(0, len(ids), IDS_PER_PASS):
        chunk = ids[start:start + IDS_PER_PASS]
        df = lake.read(spark, name)
        hits = [_matches(df, u) for u in chunk]
        row = df.select(*[F.count_if(h).alias(f"n{i}") for i, h in enumerate(hits)]).first()
        counts.update({u: int(row[f"n{i}"]) for i, u in enumerate(chunk)})
        if any(row):
            DeltaTable.forPath(spark, lake.path(name)).delete(_with_record_mates(df, name, functools.reduce(operator.or_, hits)))
    if any(counts.values()) and _deletion_vectors(lake, name):
        spark.sql(f"REORG TABLE {_sql_path(lake, name)} APPLY (PURGE)")  # rewrite the files the vectors mask
    return counts


def _with_record_mates(df: DataFrame, name: str, hit: Column) -> Column:
    """In bronze.users, `hit` widened to every line of the CSV records holding a hit: a quoted field
    may span lines (RFC 4180), and the lines after the one holding the id are the user's too."""
    if name != "bronze.users":
        return hit
    by_batch: dict[int, list[int]] = {}
    for r in silver_transforms.csv_record_mates(df, F.coalesce(hit, F.lit(False))).collect():
        by_batch.setdefault(r["batch_id"], []).append(r["line_id"])
    mates = [(F.col("batch_id") == b) & F.col("line_id").isin(ids) for b, ids in sorted(by_batch.items())]
    return functools.reduce(operator.or_, mates, hit)


def _deletion_vectors(lake: Lake, name: str) -> bool:
    """Whether DELETE only marks rows as deleted (deletion vectors) instead of rewriting files."""
    config = _rs(lake.rs_uri(name)).metadata().configuration
    return config.get("delta.enableDeletionVectors", "false").lower() == "true"


def _recompute_gold(spark: SparkSession, lake: Lake, cfg: dict, erasure_id: str) -> list[str]:
    """Every gold table gold.run builds, from the cleaned silver (nothing when silver has no activity),
    with the settings a pipeline run's gold step has (`session.layer_settings`)."""
    with tuned(spark, layer_settings(cfg, lake, "gold")):
        return [f"gold.{n}" for n in gold.run(spark, lake, cfg, txn_version=None, run_id=f"erasure-{erasure_id}").rows]


def _redact_ops(lake: Lake, names: list[str], ids: list[str]) -> list[str]:
    """Replace the ids by [erased] in ops rows (rule samples, error messages); the tables rewritten."""
    pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(u)}(?![\w-])" for u in ids))
    redacted = []
    for name in [n for n in names if n.startswith("ops.") and n not in OPS_KEPT]:
        data = _rs(lake.rs_uri(name)).to_pyarrow_table()
        texts = [f.name for f in data.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        rows = data.to_pylist()
        if not any(r[c] and pattern.search(r[c]) for r in rows for c in texts):
            continue
        for r in rows:
            r.update({c: pattern.sub(ERASED, r[c]) for c in texts if r[c]})
        write_deltalake(lake.rs_uri(name), pa.Table.from_pylist(rows, schema=data.schema), mode="overwrite",
                        storage_options=lake.rs_options)
        redacted.append(name)
    return redacted


def _cut_history(spark: SparkSession, lake: Lake, name: str, hours: int, erasure_id: str) -> int:
    """Vacuum; commit an id-free marker; checkpoint it; delete every older log file. Files vacuumed.

    Older commits hold the ids (DELETE predicates, min/max statistics, `.crc` file lists); the
    checkpoint keeps the table's metadata, live files and idempotent-write (`txn`) markers.
    """
    uri = lake.rs_uri(name)
    deleted = _vacuum(uri, hours)
    _rs(uri).alter.set_table_properties({"lakehouse.last_erasure": erasure_id}, raise_if_not_exists=False)
    table = _rs(uri)
    table.create_checkpoint()
    _delete_log_before(spark, lake.path(name), table.version())
    return deleted


def _delete_log_before(spark: SparkSession, table_path: str, version: int) -> None:
    """Delete the table's log files (commits, checksums, checkpoints) of versions below `version`."""
    jvm = spark.sparkContext._jvm
    log = jvm.org.apache.hadoop.fs.Path(f"{table_path.rstrip('/')}/_delta_log")
    fs = log.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # also deletes `.crc` sidecars
    for status in fs.listStatus(log):
        m = re.match(r"(\d{20})\.", status.getPath().getName())
        if status.isFile() and m and int(m.group(1)) < version:
            fs.delete(status.getPath(), False)


def _check_no_interrupted_batch(lake: Lake) -> None:
    """An interrupted bronze batch is replayed from its landing files, which may still hold the users."""
    manifest = ops.read(lake, "ops.ingest_files")
    committed = {r["batch_id"] for r in manifest if r["status"] == "committed"}
    if any(r["status"] == "planned" and r["batch_id"] not in committed for r in manifest):
        raise MaintenanceError("an interrupted bronze batch would re-read its landing files: "
                               "run `lakehouse run` first, then forget")


# ---------------------------------------------------------------- forget

@dataclass
class Erasure:
    """What one forget did (also the rows it logs in ops.erasures)."""

    ids: list[str]
    hours: int
    erasure_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    requested_at: dt.datetime = field(default_factory=ops.now)
    removed: dict = field(default_factory=dict)  # table -> {id: rows}
    rebuilt: list = field(default_factory=list)
    redacted: list = field(default_factory=list)
    cut: list = field(default_factory=list)
    changed: list = field(default_factory=list)  # tables with a new version: their replaced files hold the rows
    vacuumed: int = 0
    status: str = "failed"

    def log(self, lake: Lake, cfg: dict) -> None:
        """One ops.erasures row per id: its salted hash (never the id), rows removed per table, status,
        and the tables whose replaced data files still hold the rows until vacuumed (docs/maintenance.md)."""
        ended = ops.now()
        gone = not self.changed or (self.status == "completed" and self.hours == 0)  # cut vacuumed them all
        ops.append(lake, "ops.erasures", [{
            "erasure_id": self.erasure_id, "requested_at": self.requested_at, "completed_at": ended,
            "user_id_hash": erasure_hash(cfg, u), "status": self.status,
            "rows_removed_json": json.dumps({t: c.get(u, 0) for t, c in sorted(self.removed.items())}),
            "files_tables_json": json.dumps(sorted(self.changed)),
            "files_due_at": ended + dt.timedelta(hours=self.hours), "files_deleted_at": ended if gone else None,
        } for u in self.ids])

    def render(self) -> str:
        """The summary the CLI prints."""
        found = sum(1 for u in self.ids if any(c.get(u) for c in self.removed.values()))
        rows = ", ".join(f"{t} {sum(c.values())}" for t, c in self.removed.items() if any(c.values()))
        out = [f"forget {self.erasure_id}: {len(self.ids)} user id(s), {found} found in the lake; "
               "logged in ops.erasures as salted hashes",
               f"  rows removed: {rows or 'none'}"]
        if self.rebuilt:
            out.append(f"  gold: {len(self.rebuilt)} tables recomputed from the cleaned silver")
        if self.redacted:
            out.append(f"  ops: ids replaced by {ERASED} in {', '.join(self.redacted)}")
        out.append(f"  history: {len(self.cut)} tables vacuumed (retention {self.hours} h, {self.vacuumed} files "
                   "deleted) and cut at a new checkpoint; their earlier versions are gone")
        if self.hours:
            until = (ops.now() + dt.timedelta(hours=self.hours)).strftime("%Y-%m-%d %H:%M UTC")
            out.append(f"  NOT YET GONE FROM DISK: the replaced data files still hold the removed rows until they are "
                       f"{self.hours} h old ({until}); the first `lakehouse run` (or watch cycle) after that deletes "
                       "them and records it in ops.erasures (`lakehouse maintain --retention-hours 0` deletes them now)")
        out.append("  landing: delete these users' lines from your landing files yourself "
                   "(files already ingested are never read again)")
        return "\n".join(out)


def forget(spark: SparkSession, cfg: dict, lake_root: str, user_ids: Iterable[str], wait: bool = False,
           progress: Callable[[str], None] | None = None) -> str:
    """Erase users from every table of the lake and from the tables' history; returns a summary."""

    say = progress or (lambda message: None)
    lake = Lake(lake_root)
    erasure = Erasure(check_ids(user_ids), retention_hours(cfg))
    names = existing_tables(lake_root)  # before the lock, which would create a mistyped folder
    with lake_lock(lake_root, wait=wait, command="lakehouse forget"):
        _check_no_interrupted_batch(lake)
        before = {n: ops.table_version(lake, n) for n in names}
        try:
            _erase_rows(spark, lake, cfg, names, erasure, say)
            erasure.redacted = _redact_ops(lake, names, erasure.ids)
            erasure.cut = [n for n in names if ops.table_version(lake, n) != before[n]]
            cut = _each(lambda n: _cut_history(spark, lake, n, erasure.hours, erasure.erasure_id), erasure.cut)
            erasure.vacuumed = sum(cut.values())
            spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()  # logs changed under Spark
            say(f"history cut in {len(erasure.cut)} tables")
            erasure.status = "completed"
        finally:  # also after a failure: the tables changed so far hold the rows in replaced files
            try:
                erasure.changed = [n for n in names if ops.table_version(lake, n) != before[n]]
            except Exception:  # noqa: BLE001 - a log that cannot be read: count every table as changed
                erasure.changed = list(names)
            erasure.log(lake, cfg)
    return erasure.render()


def tied_ids(lake: Lake, user_ids: list[str]) -> dict[str, str]:
    """The anonymous ids whose identity ties lead to one of `user_ids` (silver.identities, chains
    followed), each with that user: their raw records are the user's too (docs/sources.md)."""
    from deltalake.exceptions import TableNotFoundError

    try:
        ties = RsTable(lake.rs_uri("silver.identities"), storage_options=lake.rs_options).to_pyarrow_table(columns=["anonymous_id", "user_id"]).to_pylist()
    except TableNotFoundError:
        return {}
    claimed_by: dict[str, list[str]] = {}
    for t in ties:
        claimed_by.setdefault(t["user_id"], []).append(t["anonymous_id"])
    owner: dict[str, str] = {}
    for user in user_ids:
        todo = list(claimed_by.get(user, []))
        while todo:
            anon = todo.pop()
            if anon not in owner and anon not in user_ids:
                owner[anon] = user
                todo += claimed_by.get(anon, [])
    return owner


def _erase_rows(spark: SparkSession, lake: Lake, cfg: dict, names: list[str], erasure: Erasure,
                say: Callable[[str], None]) -> None:
    """Delete the users (and the anonymous ids tied to them) from bronze and silver, then recompute
    gold (or delete their gold rows). Rows of a tied anonymous id count as its user's.

    A lake that holds no gold table yet (built with `--only silver`, or stopped before gold) gets
    none: forget erases, it does not build; the next run builds gold from the cleaned silver.
    """
    owner = tied_ids(lake, erasure.ids)
    ids, removed = erasure.ids + sorted(owner), erasure.removed

    def erase(name: str) -> dict[str, int]:
        counts = _erase(spark, lake, name, ids)
        for anon, user in owner.items():
            counts[user] = counts.get(user, 0) + counts.pop(anon, 0)
        return counts

    removed.update(_each(erase, [n for n in UPSTREAM if n in names]))
    say(f"bronze and silver: {sum(sum(c.values()) for c in removed.values())} rows removed")
    if any(any(c.values()) for c in removed.values()) and any(n in names for n in GOLD_TABLES):
        erasure.rebuilt = _recompute_gold(spark, lake, cfg, erasure.erasure_id)
    leftover = [n for n in GOLD_TABLES if n in names and n not in erasure.rebuilt]
    removed.update(_each(lambda n: _erase(spark, lake, n, ids), leftover))
    if not erasure.rebuilt and any(any(removed[n].values()) for n in leftover):
        erasure.rebuilt = _recompute_gold(spark, lake, cfg, erasure.erasure_id)  # only gold still had them
    say(f"gold: {len(erasure.rebuilt)} tables recomputed")


# ---------------------------------------------------------------- completing erasures

def pending_erasures(lake: Lake) -> dict[str, list[dict]]:
    """Erasures whose replaced data files are not yet recorded as deleted: erasure_id -> its
    ops.erasures rows. Rows logged before ops.erasures tracked files (no files_due_at) are not
    tracked. Reads ops.erasures with delta-rs (no Spark job)."""
    pending: dict[str, list[dict]] = {}
    for r in ops.read(lake, "ops.erasures"):
        if r.get("files_due_at") is not None and r.get("files_deleted_at") is None:
            pending.setdefault(r["erasure_id"], []).append(r)
    return pending


def due_erasures(lake: Lake, hours: int, now: dt.datetime | None = None) -> dict[str, list[dict]]:
    """The pending erasures that a vacuum with `hours` of retention completes at `now`: their forget
    ended (every file it replaced was unreferenced by then) at least `hours` before."""
    now = now or ops.now()
    return {e: rows for e, rows in pending_erasures(lake).items()
            if max(r["completed_at"] for r in rows) + dt.timedelta(hours=hours) <= now}


def complete_erasures(cfg: dict, lake_root: str, now: dt.datetime | None = None) -> str:
    """Delete the replaced data files that still hold erased rows once the retention has passed.

    Vacuums (delta-rs, the configured retention) exactly the tables of the due erasures, then
    records `files_deleted_at` in their ops.erasures rows; returns what it did, "" when nothing is
    due (then it has only read ops.erasures: no Spark job). The caller holds the lake lock. A table
    that cannot be vacuumed is reported in the text, never raised: its erasures stay pending and the
    next call retries them. `now` is the clock for the due check (tests); vacuum uses the real one.
    """
    hours = retention_hours(cfg)
    lake = Lake(lake_root)
    due = due_erasures(lake, hours, now)
    if not due:
        return ""
    tables = {e: sorted(set().union(*(json.loads(r["files_tables_json"] or "[]") for r in rows)))
              for e, rows in due.items()}
    names = sorted(set().union(*tables.values()))
    existing = [n for n in names if n in REGISTRY and ops.table_version(lake, n) is not None]  # gone: nothing left

    def vacuum(name: str):
        try:
            return _vacuum(lake.rs_uri(name), hours)
        except Exception as exc:  # noqa: BLE001 - reported below, retried by the next call
            return exc

    result = _each(vacuum, existing)
    failed = {n: r for n, r in result.items() if isinstance(r, Exception)}
    done = [e for e in due if not failed.keys() & set(tables[e])]
    out = []
    if done:
        deleted_at = ops.now()
        listed = ", ".join(f"'{e}'" for e in done)  # erasure ids are hex
        _rs(lake.rs_uri("ops.erasures")).update(
            predicate=f"erasure_id IN ({listed}) AND files_deleted_at IS NULL", new_values={"files_deleted_at": deleted_at})
    for e in due:
        users = len(due[e])
        if e in done:
            files = sum(result.get(n, 0) for n in tables[e])
            out.append(f"erasure {e} completed: the replaced data files that held the rows of its {users} user id(s) "
                       f"are deleted ({len(tables[e])} tables vacuumed with retention {hours} h, {files} files); "
                       "recorded in ops.erasures")
        else:
            why = "; ".join(f"{n}: {str(failed[n]).splitlines()[0] if str(failed[n]) else type(failed[n]).__name__}"
                            for n in tables[e] if n in failed)
            out.append(f"erasure {e} NOT completed: could not vacuum {why}; still pending, the next run retries")
    return "\n".join(out)


# ---------------------------------------------------------------- maintain

@dataclass
class Maintained:
    """One table's maintenance: live data files before and after, what was done, files vacuumed."""

    name: str
    before: int
    after: int
    action: str
    vacuumed: int

    def render(self) -> str:
        """One line of the maintain summary."""
        return f"  {self.name}: {self.before} -> {self.after} ({self.action}; {self.vacuumed} files vacuumed)"


def _compact(spark: SparkSession, lake: Lake, name: str, zorder: bool) -> str:
    """Bin-pack a table's small files, or cluster them with ZORDER BY; what was done."""
    if name.startswith("ops."):  # written by delta-rs: compacted by delta-rs
        _rs(lake.rs_uri(name)).optimize.compact()
        return "compacted"
    if name in ORDERED:
        lake.keep_order(name)  # a lake from before the layout: its properties, then its files
        # Each file also sorted by the clustering value (Delta's default only ranges the rows across
        # files), so its row groups hold narrow ranges that Parquet's statistics skip; and files of
        # at most ORDERED_FILE_BYTES (Delta's default: 1 GB), each a range of the column, sorted in
        # parallel and skipped whole from the log's statistics. In a session of its own: these
        # settings must not reach the other tables compacted at the same time.
        ordered = spark.newSession()
        ordered.conf.set("spark.databricks.io.skipping.mdc.sortWithinFiles", "true")
        ordered.conf.set("spark.databricks.delta.optimize.maxFileSize", str(ORDERED_FILE_BYTES))
        ordered.sql(f"OPTIMIZE {_sql_path(lake, name)} ZORDER BY ({ORDERED[name]})")
        return f"z-ordered by {ORDERED[name]}, sorted within files"
    columns = ZORDER.get(name, ()) if zorder else ()
    if columns:
        spark.sql(f"OPTIMIZE {_sql_path(lake, name)} ZORDER BY ({', '.join(columns)})")
        return "z-ordered by " + ", ".join(columns)
    spark.sql(f"OPTIMIZE {_sql_path(lake, name)}")
    return "compacted"


def _maintain_table(spark: SparkSession, lake: Lake, name: str, hours: int, zorder_min_bytes: int) -> Maintained:
    """Compact a table with more than one live file, vacuum it, checkpoint it when delta-rs writes it."""
    uri = lake.rs_uri(name)
    before, size = _files(uri)
    action = _compact(spark, lake, name, size >= zorder_min_bytes) if before > 1 else "kept"
    vacuumed = _vacuum(uri, hours)
    if name.startswith("ops."):  # delta-rs checkpoints every 100 commits only: keep the log short
        table = _rs(uri)
        table.create_checkpoint()
        table.cleanup_metadata()
    return Maintained(name, before, _files(uri)[0], action, vacuumed)


def _maintain(spark: SparkSession, cfg: dict, lake: Lake, names: list[str]) -> list[Maintained]:
    """_maintain_table for each table, four at a time."""
    hours = retention_hours(cfg)
    zorder_min_bytes = setting(cfg, "zorder_min_mb") * 1024 * 1024
    done = _each(lambda n: _maintain_table(spark, lake, n, hours, zorder_min_bytes), names)
    return list(done.values())


def maintain(spark: SparkSession, cfg: dict, lake_root: str, wait: bool = False) -> str:
    """Compact small files and vacuum every table of the lake; returns a summary per table."""

    started = time.perf_counter()
    check_settings(cfg)
    lake = Lake(lake_root)
    names = existing_tables(lake_root)  # before the lock, which would create a mistyped folder
    with lake_lock(lake_root, wait=wait, command="lakehouse maintain"):
        done = _maintain(spark, cfg, lake, names)
        erasures = complete_erasures(cfg, lake_root)  # pending erasures its retention lets it finish
    head = (f"maintain: {len(done)} tables in {time.perf_counter() - started:.0f}s (vacuum retention "
            f"{retention_hours(cfg)} h); live data files before -> after:")
    return "\n".join([head] + [m.render() for m in done] + ([erasures] if erasures else []))


def after_run(spark: SparkSession, cfg: dict, lake_root: str) -> str:
    """The pipeline's hook, called under the lake lock after a run that wrote something: maintain
    the tables with more than `maintenance.max_files_per_table` live files; "" when none (or 0)."""
    limit = setting(cfg, "max_files_per_table")
    lake = Lake(lake_root)
    crowded = [n for n in _lake_tables(lake) if limit and _files(lake.rs_uri(n))[0] > limit]
    if not crowded:
        return ""
    done = _maintain(spark, cfg, lake, crowded)
    return "maintenance: " + ", ".join(f"{m.name} {m.before} -> {m.after} files" for m in done)
