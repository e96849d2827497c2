"""Bronze step: ingest landed files exactly once, keeping every raw line verbatim.

Exactly-once without a streaming checkpoint: a run first records the files it is about to
ingest as a *planned* batch in `ops.ingest_files`, then appends their lines to bronze with a
Delta idempotent write (txnAppId/txnVersion = the batch id), then records the batch as
*committed*. A run killed anywhere in between finds the planned batch and replays exactly
the same files; Delta skips a write whose batch was already committed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from lakehouse import ops
from lakehouse.tables import Lake, is_local, local_path
from lakehouse.transforms.silver import UNREADABLE_MARKER

FEEDS = {
    "events": (".jsonl", ".jsonl.gz", ".json", ".json.gz"),
    "users": (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv", ".csv.gz"),
}


class LandingError(RuntimeError):
    """The landing folder cannot be read."""


@dataclass
class BronzeResult:
    """What one bronze step did."""

    batch_id: int | None = None
    files: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    replayed: bool = False


def _hadoop_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _is_landing_file(name: str, suffixes: tuple[str, ...]) -> bool:
    return not name.startswith((".", "_")) and name.lower().endswith(suffixes)


def list_landing(spark: SparkSession, landing: str) -> dict[str, list[tuple[str, int, dt.datetime]]]:
    """Every landing file per feed as (uri, size, modification time), through Hadoop's FileSystem."""
    root, fs = _hadoop_path(spark, landing)
    if not fs.exists(root) or not fs.getFileStatus(root).isDirectory():
        raise LandingError(f"landing folder not found: {landing}")
    out: dict[str, list] = {}
    for feed, suffixes in FEEDS.items():
        out[feed] = []
        feed_root, _ = _hadoop_path(spark, f"{landing.rstrip('/')}/{feed}")
        if not fs.exists(feed_root):
            continue
        files = fs.listFiles(feed_root, True)
        while files.hasNext():
            status = files.next()
            name = status.getPath().getName()
            if _is_landing_file(name, suffixes):
                modified = dt.datetime.fromtimestamp(status.getModificationTime() / 1000, tz=dt.timezone.utc)
                out[feed].append((status.getPath().toString(), int(status.getLen()), modified))
        out[feed].sort()
    return out


def committed_batches(lake: Lake) -> list[int]:
    """Batch ids whose bronze writes are complete, ascending."""
    return sorted({r["batch_id"] for r in ops.read(lake, "ops.ingest_files") if r["status"] == "committed"})


def _record(lake: Lake, rows: list[tuple], status: str, recorded_at: dt.datetime) -> None:
    ops.append(lake, "ops.ingest_files", [
        {"batch_id": b, "feed": feed, "file_path": path, "size": size, "modified_at": mtime,
         "status": status, "recorded_at": recorded_at}
        for b, feed, path, size, mtime in rows
    ])


def _unfinished(manifest: list[dict]) -> list[dict]:
    """Manifest rows of planned batches whose bronze write has not been recorded as committed."""
    committed = {r["batch_id"] for r in manifest if r["status"] == "committed"}
    return [r for r in manifest if r["status"] == "planned" and r["batch_id"] not in committed]


def _unseen(spark: SparkSession, manifest: list[dict], landing: str) -> list[tuple[str, str, int, dt.datetime]]:
    """Landing files the manifest has never listed, as (feed, uri, size, modification time)."""
    known = {r["file_path"] for r in manifest}
    return [(feed, path, size, mtime) for feed, files in list_landing(spark, landing).items()
            for path, size, mtime in files if path not in known]


def has_pending(spark: SparkSession, lake: Lake, landing: str) -> bool:
    """Whether a run would ingest anything: an unfinished batch or a landing file never seen.

    Reads the file listing and `ops.ingest_files` (delta-rs) only: no Spark job.
    """
    manifest = ops.read(lake, "ops.ingest_files")
    return bool(_unfinished(manifest)) or bool(_unseen(spark, manifest, landing))


def plan_batch(spark: SparkSession, lake: Lake, landing: str) -> tuple[int | None, list[tuple], dt.datetime | None, bool]:
    """The batch to ingest: an unfinished planned one (replayed as is) or the files never seen."""
    manifest = ops.read(lake, "ops.ingest_files")
    pending = _unfinished(manifest)
    if pending:
        batch_id = pending[0]["batch_id"]
        rows = [(r["batch_id"], r["feed"], r["file_path"], r["size"], r["modified_at"]) for r in pending if r["batch_id"] == batch_id]
        return batch_id, rows, pending[0]["recorded_at"], True
    batch_id = max((r["batch_id"] for r in manifest), default=0) + 1
    rows = [(batch_id, feed, path, size, mtime) for feed, path, size, mtime in _unseen(spark, manifest, landing)]
    if not rows:
        return None, [], None, False
    planned_at = ops.now().replace(microsecond=0)
    _record(lake, rows, "planned", planned_at)
    return batch_id, rows, planned_at, False


def damaged_gzip_files(paths: list[str]) -> dict[str, str]:
    """Local .gz files that do not decompress to the end, with the error (checked by streaming)."""
    import gzip
    import zlib

    damaged = {}
    for uri in paths:
        if not uri.lower().endswith(".gz") or not is_local(uri):
            continue
        local = local_path(uri)
        try:
            with gzip.open(local, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        except (EOFError, OSError, zlib.error) as exc:
            damaged[uri] = f"{type(exc).__name__}: {exc}"[:200]
    return damaged


def read_lines(spark: SparkSession, paths: list[str], batch_id: int, ingested_at: dt.datetime):
    """Every line of the files, verbatim, with its file, the file's time and a line id.

    Damaged compressed files give the lines before the damage plus one marker line that silver
    quarantines as `unreadable_file`, so nothing is lost silently and the run goes on.
    """
    damaged = damaged_gzip_files(paths)
    lines = spark.read.format("text").option("ignoreCorruptFiles", "true").load(paths).select(
        F.col("value"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_modification_time").alias("file_modified_at"),
    )
    if damaged:
        markers = spark.createDataFrame(
            [(UNREADABLE_MARKER + reason, uri, None) for uri, reason in sorted(damaged.items())],
            "value string, source_file string, file_modified_at timestamp",
        )
        lines = lines.unionByName(markers)
    # Text stays valid UTF-8 (readable by every Parquet/Arrow reader); a line that was not keeps
    # its original bytes in value_bytes, so it is still stored exactly as it arrived.
    return lines.select(
        F.expr("make_valid_utf8(value)").alias("value"),
        "source_file", "file_modified_at",
        F.monotonically_increasing_id().alias("line_id"),
        F.lit(batch_id).cast("long").alias("batch_id"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.when(~F.expr("is_valid_utf8(value)"), F.col("value").cast("binary")).alias("value_bytes"),
    )


def ingest(spark: SparkSession, lake: Lake, landing: str) -> BronzeResult:
    """Ingest the files not ingested before (or finish an interrupted batch)."""
    batch_id, rows, ingested_at, replayed = plan_batch(spark, lake, landing)
    result = BronzeResult(batch_id=batch_id, replayed=replayed)
    if batch_id is None:
        return result
    for feed in FEEDS:
        paths = [path for _, f, path, _, _ in rows if f == feed]
        result.files[feed] = len(paths)
        if not paths:
            result.lines[feed] = 0
            continue
        lines = read_lines(spark, paths, batch_id, ingested_at)
        version = ops.table_version(lake, f"bronze.{feed}")
        lake.write(lines, f"bronze.{feed}", mode="append", txn=(f"bronze.{feed}", batch_id))
        if ops.table_version(lake, f"bronze.{feed}") != version:
            result.lines[feed] = ops.last_commit_rows(lake, f"bronze.{feed}")
        else:  # replay of a batch whose write had committed before the run was killed
            result.lines[feed] = lake.read(spark, f"bronze.{feed}").filter(F.col("batch_id") == batch_id).count()
    _record(lake, rows, "committed", ingested_at)
    return result
