"""Bronze step: ingest each source's new records exactly once, keeping every raw line verbatim.

Every row keeps its source's name and kind (`source`, `source_kind`: `lakehouse.sources`) and
its origin (the file, or for a database source the table and watermark range, in `source_file`).

Exactly-once without a streaming checkpoint: a run first records the files it is about to
ingest as a *planned* batch in `ops.ingest_files`, then appends their lines to bronze with a
Delta idempotent write (txnAppId/txnVersion = the batch id), then records the batch as
*committed*. A run killed anywhere in between finds the planned batch and replays exactly
the same files; Delta skips a write whose batch was already committed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import os
from dataclasses import dataclass, field

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from lakehouse import jdbc, ops
from lakehouse.sources import CSV_SUFFIXES, DEFAULT_NAME, JSON_SUFFIXES, Source, SourceError
from lakehouse.tables import Lake, is_local, local_path
from lakehouse.transforms.common import local_frame
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
    """Every landing file per feed as (uri, size, modification time), sorted (`_list_files`)."""
    root, fs = _hadoop_path(spark, landing)
    if not fs.exists(root) or not fs.getFileStatus(root).isDirectory():
        raise LandingError(f"landing folder not found: {landing}")
    out: dict[str, list] = {}
    for feed, suffixes in FEEDS.items():
        out[feed] = [f for f in _list_files(spark, f"{landing.rstrip('/')}/{feed}")
                     if _is_landing_file(f[0].rsplit("/", 1)[-1], suffixes)]
    return out


def _list_files(spark: SparkSession, root_uri: str) -> list[tuple[str, int, dt.datetime]]:
    """Every file below a folder (recursively) as (uri, size, modification time), sorted; [] when absent.

    URIs are Hadoop's (`file:/abs/path` for a local folder), the keys of ops.ingest_files. A local
    folder is walked by Python (`_walk_local`: the same URIs; it also lists the hidden `.crc` files
    Hadoop's local file system hides, which no landing filter keeps): asking Hadoop's iterator costs
    eight py4j round trips a file (5.6 s for a year of daily files under load).
    """
    if is_local(root_uri):
        return _walk_local(root_uri)
    root, fs = _hadoop_path(spark, root_uri)
    if not fs.exists(root):
        return []
    out = []
    files = fs.listFiles(root, True)
    while files.hasNext():
        status = files.next()
        modified = dt.datetime.fromtimestamp(status.getModificationTime() / 1000, tz=dt.timezone.utc)
        out.append((status.getPath().toString(), int(status.getLen()), modified))
    return sorted(out)


def _walk_local(root_uri: str) -> list[tuple[str, int, dt.datetime]]:
    """`_list_files` of a local folder: the URIs Hadoop's local file system gives (`file:` and the
    absolute path with repeated slashes collapsed; symbolic links to folders followed), sizes and
    modification times (ms). As with Hadoop, a file gone before it is looked at (or a broken link)
    is left out, and a folder that cannot be read stops the listing."""
    root = "/" + os.path.abspath(local_path(root_uri)).lstrip("/")  # POSIX keeps a leading "//"
    if not os.path.exists(root):
        return []

    def unreadable(err: OSError) -> None:
        if not isinstance(err, FileNotFoundError):
            raise LandingError(f"cannot list {err.filename}: {err.strerror}")

    out = []
    for folder, _, names in os.walk(root, onerror=unreadable, followlinks=True):
        for name in names:
            try:
                st = os.stat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            modified = dt.datetime.fromtimestamp(st.st_mtime_ns // 1_000_000 / 1000, tz=dt.timezone.utc)
            out.append(("file:" + os.path.join(folder, name), int(st.st_size), modified))
    return sorted(out)


def _csv_feed(src: Source, uri: str, root: str) -> str | None:
    """Which feed a CSV source's file belongs to: its `files` glob per feed (relative to the
    source's folder), else by name: `users*`/`profiles*` or below `users/` are profiles, every
    other CSV file holds events."""
    rel = uri[len(root):].lstrip("/") if uri.startswith(root) else uri.rsplit("/", 1)[-1]
    name = rel.rsplit("/", 1)[-1]
    if not _is_landing_file(name, CSV_SUFFIXES):
        return None
    for feed in ("users", "events"):
        pattern = (src.options.get(feed) or {}).get("files")
        if pattern and (fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern)):
            return feed
    if any((src.options.get(feed) or {}).get("files") for feed in ("users", "events")):
        return None  # globs given: a file neither matches is not this source's
    parts = rel.lower().split("/")
    if parts[-1].startswith(("users", "profiles")) or "users" in parts[:-1]:
        return "users"
    return "events"


def list_source(spark: SparkSession, src: Source) -> dict[str, list[tuple[str, int, dt.datetime]]]:
    """A file source's files per feed as (uri, size, modification time), sorted.

    `landing`: `events/` and `users/` below it; `segment`: every JSON-lines file below it (one
    call or batch body per line; identify calls become profiles in silver); `csv`: every CSV file
    below it, events or profiles by `_csv_feed`.
    """
    if src.kind == "landing":
        return list_landing(spark, src.uri)
    root, fs = _hadoop_path(spark, src.uri)
    if not fs.exists(root) or not fs.getFileStatus(root).isDirectory():
        raise LandingError(f"source {src.name}: folder not found: {src.uri}")
    base = root.toString().rstrip("/")
    out: dict[str, list] = {"events": [], "users": []}
    for uri, size, mtime in _list_files(spark, src.uri):
        name = uri.rsplit("/", 1)[-1]
        if src.kind == "segment":
            if _is_landing_file(name, JSON_SUFFIXES):
                out["events"].append((uri, size, mtime))
        else:
            feed = _csv_feed(src, uri, base)
            if feed:
                out[feed].append((uri, size, mtime))
    return out


def _first_lines(spark: SparkSession, uri: str, n: int = 2) -> list[str]:
    """A file's first `n` lines (a local file read directly; any other URI through Spark)."""
    if is_local(uri):
        import gzip
        import itertools

        path = local_path(uri)
        opener = gzip.open if path.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            return [line.rstrip("\r\n") for line in itertools.islice(fh, n)]
    return [r[0] for r in spark.read.format("text").load(uri).limit(n).collect()]


def check_csv_headers(spark: SparkSession, src: Source, files: list[tuple[str, str]]) -> None:
    """Fail before anything is written when a CSV source's own mapping names a column a new file's
    header lacks, or its `ts_format` does not read the file's first timestamp (`files`: (feed, uri)
    pairs). The kind's default mapping needs no column."""
    import csv

    from lakehouse.transforms.sources import csv_mapping, header_name

    for feed, uri in files:
        spec = src.options.get(feed) or {}
        wanted = [(f"{feed}.{section}.{key}", str(col)) for section in ("fields", "properties", "context")
                  for key, col in (spec.get(section) or {}).items()]
        if not wanted and not spec.get("ts_format"):
            continue
        lines = _first_lines(spark, uri)
        records = list(csv.reader([line.lstrip("\ufeff") for line in lines[:1]] + lines[1:2]))
        header = records[0] if records else []
        names = [header_name(h) for h in header]
        for setting, col in wanted:
            if header_name(col) not in names:
                raise SourceError(f"source {src.name}: {setting} names column {col!r}, which {local_path(uri)} "
                                  f"does not have (its columns: {', '.join(h.strip() for h in header)})")
        time_field = "ts" if feed == "events" else "registered_at"
        if spec.get("ts_format") and len(records) > 1:
            first = dict(zip(names, records[1]))
            text = next((first[c].strip() for c in csv_mapping(spec, feed)["fields"].get(time_field, ())
                         if first.get(c, "").strip()), None)
            if text is not None:
                fmt = str(spec["ts_format"])
                read = spark.range(1).select(F.try_to_timestamp(F.lit(text), F.lit(fmt))).first()[0]
                if read is None:
                    raise SourceError(f"source {src.name}: {feed}.ts_format {fmt!r} does not read {text!r}, the first "
                                      f"{time_field} of {local_path(uri)}")


def committed_batches(lake: Lake) -> list[int]:
    """Batch ids whose bronze writes are complete, ascending."""
    return sorted({r["batch_id"] for r in ops.read(lake, "ops.ingest_files") if r["status"] == "committed"})


def _record(lake: Lake, rows: list[tuple], status: str, recorded_at: dt.datetime) -> None:
    ops.append(lake, "ops.ingest_files", [
        {"batch_id": b, "feed": feed, "file_path": path, "size": size, "modified_at": mtime,
         "status": status, "recorded_at": recorded_at, "source": source, "source_kind": kind}
        for b, feed, path, size, mtime, source, kind in rows
    ])


def _unfinished(manifest: list[dict]) -> list[dict]:
    """Manifest rows of planned batches whose bronze write has not been recorded as committed."""
    committed = {r["batch_id"] for r in manifest if r["status"] == "committed"}
    return [r for r in manifest if r["status"] == "planned" and r["batch_id"] not in committed]


def as_sources(sources: str | Source | list[Source]) -> list[Source]:
    """A landing folder (str), one Source or a list of them, as a list of Sources."""
    if isinstance(sources, str):
        return [Source(name=DEFAULT_NAME, kind="landing", uri=sources)]
    if isinstance(sources, Source):
        return [sources]
    return list(sources)


def _unseen(spark: SparkSession, manifest: list[dict], sources: list[Source]) -> list[tuple[str, str, int, dt.datetime, str, str]]:
    """Files of the file sources the manifest has never listed, as (feed, uri, size, modification
    time, source name, source kind); database sources are planned by `lakehouse.jdbc`."""
    known = {r["file_path"] for r in manifest}
    return [(feed, path, size, mtime, src.name, src.kind) for src in sources if src.kind != "jdbc"
            for feed, files in list_source(spark, src).items()
            for path, size, mtime in files if path not in known]


def has_pending(spark: SparkSession, lake: Lake, sources: str | list[Source]) -> bool:
    """Whether a run would ingest anything: an unfinished batch, a file never seen, or database rows
    past a database source's watermark.

    Reads the file listing and `ops.ingest_files` (delta-rs) only, no Spark job, unless a database
    source has to be asked (`lakehouse.jdbc.plan`: one small query).
    """
    manifest = ops.read(lake, "ops.ingest_files")
    sources = as_sources(sources)
    return (bool(_unfinished(manifest)) or bool(_unseen(spark, manifest, sources))
            or any(jdbc.plan(spark, src, manifest) for src in sources if src.kind == "jdbc"))


def plan_batch(spark: SparkSession, lake: Lake, sources: str | list[Source]) -> tuple[int | None, list[tuple], dt.datetime | None, bool]:
    """The batch to ingest: an unfinished planned one (replayed as is) or the files never seen.

    Rows are (batch_id, feed, uri, size, modification time, source name, source kind).
    """
    sources = as_sources(sources)
    manifest = ops.read(lake, "ops.ingest_files")
    pending = _unfinished(manifest)
    if pending:
        batch_id = pending[0]["batch_id"]
        rows = [(r["batch_id"], r["feed"], r["file_path"], r["size"], r["modified_at"],
                 r.get("source") or DEFAULT_NAME, r.get("source_kind") or "landing")
                for r in pending if r["batch_id"] == batch_id]
        return batch_id, rows, pending[0]["recorded_at"], True
    batch_id = max((r["batch_id"] for r in manifest), default=0) + 1
    rows = [(batch_id, *unseen) for unseen in _unseen(spark, manifest, sources)]
    for src in sources:
        if src.kind == "csv":
            check_csv_headers(spark, src, [(r[1], r[2]) for r in rows if r[5] == src.name])
        if src.kind == "jdbc":  # a range of rows past the watermark, as one manifest row
            rows += [(batch_id, *planned) for planned in jdbc.plan(spark, src, manifest)]
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


def read_lines(spark: SparkSession, paths: list[str], batch_id: int, ingested_at: dt.datetime,
               sources: dict[str, tuple[str, str]] | None = None, extra: list | None = None):
    """Every line of the files, verbatim, with its file, the file's time, a line id and its source.

    `sources` maps each file (or origin) to its (source name, kind); files it does not list are the
    landing's. `extra`: more records as (value, source_file, file_modified_at) frames, e.g. a database
    source's rows (`lakehouse.jdbc.read`), given line ids with the files' lines.

    Damaged compressed files give the lines before the damage plus one marker line that silver
    quarantines as `unreadable_file`, so nothing is lost silently and the run goes on.
    """
    damaged = damaged_gzip_files(paths)
    frames = [spark.read.format("text").option("ignoreCorruptFiles", "true").load(paths).select(
        F.col("value"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_modification_time").alias("file_modified_at"),
    )] if paths else []
    lines = functools.reduce(DataFrame.unionByName, frames + list(extra or []))
    if damaged:
        markers = local_frame(
            spark,
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
    ).withColumns(_source_columns(sources or {}))


def _source_columns(sources: dict[str, tuple[str, str]]) -> dict:
    """`source` and `source_kind` of each line, from its file (a CASE over the batch's files of
    sources other than the landing, whose lines keep the default)."""
    name, kind = F.lit(DEFAULT_NAME), F.lit("landing")
    others = {uri: nk for uri, nk in sources.items() if nk != (DEFAULT_NAME, "landing")}
    by_source: dict[tuple[str, str], list[str]] = {}
    for uri, nk in others.items():
        by_source.setdefault(nk, []).append(uri)
    for (n, k), uris in by_source.items():
        hit = F.col("source_file").isin(*uris)
        name, kind = F.when(hit, F.lit(n)).otherwise(name), F.when(hit, F.lit(k)).otherwise(kind)
    return {"source": name, "source_kind": kind}


def _database(by_name: dict[str, Source], name: str, origin: str) -> Source:
    """The run's database source a planned range belongs to (a replay needs its connection)."""
    src = by_name.get(name)
    if src is None or src.kind != "jdbc":
        raise SourceError(f"source {name}: an unfinished batch reads {origin} from it; run again with that source")
    return src


def text_bytes(uri: str, size: int) -> int:
    """The bytes of text a landed file holds: its size, or for a local .gz file the uncompressed
    size its gzip trailer records (ISIZE, modulo 4 GiB: a file that large is never small anyway),
    never less than the file's own size. A remote .gz file, or one whose trailer cannot be read,
    counts as 20 times its size (JSON lines compress about 10 to 15 times). The figure only picks
    the writer: a truncated file's trailer is arbitrary bytes, and either writer lands its lines
    and its error rows the same way."""
    if size is None:
        return 1 << 62
    if not uri.lower().endswith(".gz"):
        return size
    if is_local(uri) and size >= 18:
        try:
            with open(local_path(uri), "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                return max(int.from_bytes(fh.read(4), "little"), size)
        except OSError:
            pass
    return 20 * size


def ingest(spark: SparkSession, lake: Lake, sources: str | list[Source], small_max_bytes: int = 0) -> BronzeResult:
    """Ingest the files not ingested before (or finish an interrupted batch).

    `sources`: the landing folder, or the run's sources (`lakehouse.sources.from_run`).
    `small_max_bytes`: a feed's files holding at most this many bytes of text (`text_bytes`; no
    database range) are committed by delta-rs from the driver (`Lake.write`'s `small`), 0 = never.
    """
    batch_id, rows, ingested_at, replayed = plan_batch(spark, lake, sources)
    result = BronzeResult(batch_id=batch_id, replayed=replayed)
    if batch_id is None:
        return result
    by_name = {src.name: src for src in as_sources(sources)}
    for feed in FEEDS:
        paths = [path for _, f, path, _, _, _, kind in rows if f == feed and kind != "jdbc"]
        ranges = [jdbc.read(spark, _database(by_name, name, path), path, mtime)
                  for _, f, path, _, mtime, name, kind in rows if f == feed and kind == "jdbc"]
        result.files[feed] = len(paths) + len(ranges)
        if not paths and not ranges:
            result.lines[feed] = 0
            continue
        origin = {path: (name, kind) for _, f, path, _, _, name, kind in rows if f == feed}
        lines = read_lines(spark, paths, batch_id, ingested_at, origin, extra=ranges)
        version = ops.table_version(lake, f"bronze.{feed}")
        small = not ranges and sum(text_bytes(path, size) for _, f, path, size, _, _, _ in rows if f == feed) <= small_max_bytes
        lake.write(lines, f"bronze.{feed}", mode="append", txn=(f"bronze.{feed}", batch_id), merge_schema=True, small=small)
        if ops.table_version(lake, f"bronze.{feed}") != version:
            result.lines[feed] = ops.last_commit_rows(lake, f"bronze.{feed}")
        else:  # replay of a batch whose write had committed before the run was killed
            result.lines[feed] = lake.read(spark, f"bronze.{feed}").filter(F.col("batch_id") == batch_id).count()
    _record(lake, rows, "committed", ingested_at)
    return result
