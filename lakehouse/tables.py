"""The table registry and all table IO: where each logical table lives and how it is written."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse.catalog import NAMES as CATALOGUE_NAMES
from lakehouse.objectstore import storage_options
from lakehouse.transforms.common import local_frame

LAYERS = ("bronze", "silver", "gold", "ops")

BRONZE = ("events", "users")
SILVER = ("events", "users", "sessions", "quarantine", "identities")
GOLD = CATALOGUE_NAMES  # declared in lakehouse.catalog
OPS = ("ingest_files", "progress", "pipeline_runs", "expectations", "erasures", "gold_state", "silver_state")

REGISTRY = {f"bronze.{n}" for n in BRONZE} | {f"silver.{n}" for n in SILVER} | {f"gold.{n}" for n in GOLD} | {f"ops.{n}" for n in OPS}

# Tables kept in the order of one column, so that a scan bounded on it reads little of the table:
# compaction clusters the table by it and sorts each file (lakehouse.maintenance), and the table's
# properties (`Lake.keep_order`) make each Spark write (compaction included) cut its Parquet files
# into row groups of 4 MB with microsecond timestamps (Spark's default INT96 timestamps carry no
# min/max statistics), so a filter on the column skips the row groups that end before it;
# `Lake.read_pinned(reaching=...)` skips whole files from the Delta log's statistics (the batches
# appended since). silver.events by event time: an incremental gold run reads the events from the
# first date it rebuilds. Writes do not sort (sorting 2M events cost the full build 7-10 s):
# the order comes with the first compaction (docs/performance.md).
ORDERED = {"silver.events": "ts"}
ORDERED_PROPERTIES = {
    "parquet.block.size": str(4 * 1024 * 1024),
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

# Gold is read by delta-rs: keep it to plain reader/writer features.
GOLD_PROPERTIES = {
    "delta.enableDeletionVectors": "false",
    "delta.columnMapping.mode": "none",
}


def one_partition(df: DataFrame) -> DataFrame:
    """`df` in one partition: unchanged when its plan already yields one (no job: planning only).

    A `coalesce(1)` put over a cached frame made Spark compute the frame's plan again instead of
    reading (and filling) the cache; coalesce before caching, and use this where a consumer needs
    one partition.
    """
    try:
        if df._jdf.queryExecution().executedPlan().outputPartitioning().numPartitions() == 1:
            return df
    except Exception:  # noqa: BLE001 - a plan Spark cannot describe: coalesce as before
        pass
    return df.coalesce(1)


def kept_rows(df: DataFrame) -> DataFrame:
    """`df` kept as its computed rows the first time an action runs it (a lazy local checkpoint:
    memory, spilling to disk), for a frame read by several queries of one step.

    Cheaper to fill than `persist` for a wide frame read whole: rows are copied as they are made,
    where Spark's columnar cache builds compressed column batches with statistics (silver's parse
    of 2M lines, 32.7 s -> 29.3 s; docs/performance.md "Parsed rows kept as rows"). The plan after
    it starts from a short leaf. Free the rows with `release_rows` when the step is done.
    """
    return df.localCheckpoint(eager=False)


def release_rows(df: DataFrame) -> None:
    """Drop the rows `kept_rows` kept (no job; a frame it did not make is left alone).

    A local checkpoint's blocks are otherwise freed only after a JVM garbage collection hands the
    frame to Spark's cleaner; until then they hold storage memory the next step's caches need.
    The frame cannot be read again afterwards.
    """
    plan = df._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def rdd_mark(spark: SparkSession) -> int:
    """An id below every RDD made from now on: the mark `release_since` frees the RDDs after."""
    return int(spark.sparkContext._jsc.sc().newRddId())


def persisted_rdd_ids(spark: SparkSession) -> set[int]:
    """Ids of the RDDs the session holds persisted (caches and local checkpoints), in one round trip."""
    text = spark.sparkContext._jsc.getPersistentRDDs().keySet().toString().strip("[]")  # "[3, 17, 42]"
    return {int(i) for i in text.split(",") if i.strip()}


def release_since(spark: SparkSession, mark: int) -> int:
    """Drop the blocks of every RDD persisted since `mark` (`rdd_mark`): local checkpoints and
    caches a step made (no job). Returns how many were dropped.

    Without it a local checkpoint's blocks are freed only once a JVM garbage collection hands its
    frame to Spark's cleaner; a full collection of the driver's heap took 0.3-0.6 s per gold run
    (docs/performance.md "Checkpoints dropped by id"). Frames built on those RDDs cannot be read
    afterwards, so call it when the step's frames are done with.
    """
    ids = sorted(i for i in persisted_rdd_ids(spark) if i > mark)
    persisted = spark.sparkContext._jsc.getPersistentRDDs() if ids else None  # java.util.Map<Integer, JavaRDD>
    for rdd_id in ids:
        rdd = persisted.get(rdd_id)
        if rdd is not None:
            rdd.unpersist(False)
    return len(ids)


def to_arrow_together(frames: Mapping[str, DataFrame], rows: Mapping[str, int], max_cells: int = 4_000_000) -> dict[str, pa.Table]:
    """Several small frames as Arrow tables, fetched in as few Spark jobs as memory allows.

    `frames` maps a name to a frame (best cached, in one partition); `rows` gives each frame's
    row count (known from the expectation check's aggregation). Frames are packed in groups
    whose rows × columns stay at most `max_cells` (a frame larger than that alone is fetched on
    its own); each group is one Spark job: a union of the frames in one row layout (see
    `_stacked`: the frame's index and typed slot columns), split again on the driver. Each table equals the frame's own `toArrow()`: the same rows in the same
    order and the same Arrow schema (nullability included). A job per table costs more than
    the few kilobytes most gold tables hold (docs/performance.md).
    """
    names = sorted(frames)
    groups: list[list[str]] = []
    cur: list[str] = []
    for name in names:
        trial = cur + [name]
        cells = sum(rows.get(n, 0) for n in trial) * (1 + sum(len(frames[n].columns) for n in trial))
        if cur and cells > max_cells:
            groups.append(cur)
            trial = [name]
        cur = trial
    if cur:
        groups.append(cur)
    out: dict[str, pa.Table] = {}
    large = bool(names) and str(frames[names[0]].sparkSession.conf.get("spark.sql.execution.arrow.useLargeVarTypes")).lower() == "true"
    for group in groups:
        if len(group) == 1:
            out[group[0]] = frames[group[0]].toArrow()
            continue
        slots = _slots([frames[n] for n in group])
        table = _stacked([frames[n] for n in group], slots).toArrow()
        for i, n in enumerate(group):
            df = frames[n]
            cols = slots[i]
            schema = to_arrow_schema(df.schema, error_on_duplicated_field_names_in_struct=True, timezone="UTC",
                                     prefers_large_types=large)
            part = table.filter(pc.equal(table["__frame"], i)).select(cols).rename_columns(df.columns)
            out[n] = part.cast(schema)
    return out


def quote_ident(name: str) -> str:
    """A column name as a quoted Spark SQL identifier (backticks doubled inside)."""
    return "`" + name.replace("`", "``") + "`"


def _slots(frames: list[DataFrame]) -> list[list[str]]:
    """For each frame, the slot column each of its columns goes to in `_stacked` (`__s<type>_<n>`:
    the n-th column of that Spark type in the frame)."""
    types: dict[str, int] = {}
    out = []
    for df in frames:
        seen: dict[int, int] = {}
        names = []
        for f in df.schema.fields:
            t = types.setdefault(f.dataType.json(), len(types))
            names.append(f"__s{t}_{seen.get(t, 0)}")
            seen[t] = seen.get(t, 0) + 1
        out.append(names)
    return out


def _stacked(frames: list[DataFrame], slots: list[list[str]]) -> DataFrame:
    """The frames one after another in one row layout: `__frame` (the frame's index), then slot
    columns, each holding one column of one type for every frame (null where a frame has fewer
    columns of that type), so the layout is as narrow as the widest frame per type.

    Each part is one `selectExpr` of plain strings: a column built through the Python API costs
    several py4j round trips, and a cell per table and column (24 gold tables of ~10 columns in
    every row) made thousands of them (tens of seconds of driver time under load) and code
    generation for thousands of output columns (docs/performance.md). A bare NULL takes its
    slot's type from the frames that fill it (the union widens it). The frames are used as they
    are (a SQL view over them would not read their cache).
    """
    every = list(dict.fromkeys(name for names in slots for name in names))
    union = None
    for i, (df, names) in enumerate(zip(frames, slots)):
        mine = dict(zip(names, df.columns))
        part = df.selectExpr(f"{i} AS __frame", *[f"{quote_ident(mine[c])} AS {c}" if c in mine else f"NULL AS {c}" for c in every])
        union = part if union is None else union.union(part)
    return union


class UnknownTableError(KeyError):
    """A table name that is not in the registry."""

    def __str__(self) -> str:
        return f"unknown table {self.args[0]!r}; known tables: " + ", ".join(sorted(REGISTRY))


def is_local(uri: str) -> bool:
    """True for a local path or a `file:` URI; False for any other URI (s3a://, hdfs://...)."""
    return "://" not in uri or uri.startswith("file:")


def local_path(uri: str) -> str:
    """A `file:` URI (`file:///x`, `file:/x`) as the plain path `/x`; any other path or URI unchanged."""
    return uri.removeprefix("file://").removeprefix("file:")


def absolute(uri: str) -> str:
    """A local path or `file:` URI as an absolute plain path (relative to the working folder); any
    other URI unchanged. Delta reads delta.`<path>` in Spark SQL as a path only when it is absolute."""
    return os.path.abspath(local_path(uri)) if is_local(uri) else uri


@dataclass(frozen=True)
class Lake:
    """A lake root (local path or any Hadoop URI) and the tables under it."""

    root: str

    def path(self, name: str) -> str:
        """`<root>/<layer>/<table>` for a registered `layer.table` name."""
        if name not in REGISTRY:
            raise UnknownTableError(name)
        layer, table = name.split(".", 1)
        return f"{self.root.rstrip('/')}/{layer}/{table}"

    def rs_uri(self, name: str) -> str:
        """The table's location as delta-rs understands it (a plain path for a local lake)."""
        return local_path(self.path(name))

    @property
    def rs_options(self) -> dict[str, str] | None:
        """delta-rs storage options for this lake's tables (None for a local lake): on S3, the
        credentials, region and endpoint of the standard AWS variables (`objectstore.storage_options`)."""
        return storage_options(self.root)

    def exists(self, spark: SparkSession, name: str) -> bool:
        """True when the table has a Delta log.

        A local lake is asked through delta-rs (no JVM call: Spark's `isDeltaTable` replays the
        table's log); any other URI through Spark, which knows every Hadoop file system.
        """
        if self.is_local:
            from deltalake import DeltaTable as RsTable

            uri = self.rs_uri(name)
            return os.path.isdir(uri) and RsTable.is_deltatable(uri)
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(spark, self.path(name))

    def read(self, spark: SparkSession, name: str) -> DataFrame:
        """The current version of a table."""
        return spark.read.format("delta").load(self.path(name))

    def read_pinned(self, spark: SparkSession, name: str, version: int | None = None,
                    holding: tuple[str, object] | None = None,
                    reaching: tuple[str, dt.datetime] | None = None) -> DataFrame:
        """The table at one version (default: the latest), its files listed once, read as Parquet.

        Spark's Delta source lists a table's live files again for every query planned over it (one
        Spark job each); a step that plans many queries over the same version (a gold run: dozens)
        reads it through this instead: the Delta log is read once here (delta-rs, no Spark job)
        and the scan is a plain Parquet scan of exactly those files, with the table's schema.
        Falls back to the Delta source where plain Parquet would not give the table's rows:
        reader features (deletion vectors, column mapping), partition columns, or a lake that is
        not a local path.

        `holding=(column, value)` reads only the files whose statistics say they may hold a row with
        `column == value` (Delta's data skipping, without its Spark job); files without statistics
        are read. The caller still filters the rows. For columns with exact statistics (integers,
        dates): timestamp statistics keep milliseconds only, so no file is skipped for a timestamp.
        `reaching=(column, instant)` reads only the files whose maximum of `column` (a timestamp) may
        be `instant` or later (statistics kept to the millisecond are compared a millisecond early;
        a naive instant is UTC); the caller still filters the rows (`column >= instant`), which also
        lets Parquet skip row groups of a table kept in order (`ORDERED`).
        """
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        path = self.path(name)
        if not self.is_local:
            return reader.load(path)
        import pyarrow as pa
        from deltalake import DeltaTable
        from pyspark.sql.pandas.types import from_arrow_schema

        table = DeltaTable(local_path(path), version=version)
        if table.protocol().min_reader_version > 1 or table.metadata().partition_columns:
            return reader.load(path)
        # The schema from the same log (no Spark job: the Delta source would replay the log in Spark).
        schema = from_arrow_schema(pa.schema(table.schema().to_arrow()))
        files = table.file_uris()
        if holding is not None:
            files = _files_holding(table, files, *holding)
        if reaching is not None:
            files = _files_reaching(table, files, *reaching)
        if not files:
            return local_frame(spark, [], schema)
        return spark.read.schema(schema).parquet(*files)

    def read_or_empty(self, spark: SparkSession, name: str, schema: str, pinned: bool = False) -> DataFrame:
        """The table (through `read_pinned` when `pinned`), or an empty frame of `schema` when it
        does not exist yet."""
        if self.exists(spark, name):
            return self.read_pinned(spark, name) if pinned else self.read(spark, name)
        return local_frame(spark, [], schema)

    def version(self, spark: SparkSession, name: str) -> int | None:
        """The latest committed version, or None."""
        if not self.exists(spark, name):
            return None
        from delta.tables import DeltaTable

        return DeltaTable.forPath(spark, self.path(name)).history(1).collect()[0]["version"]

    def _write_spark(self, df: DataFrame, name: str, mode: str, txn: tuple[str, int] | None,
                     partition_by: list[str] | None, replace_where: str | None, merge_schema: bool) -> None:
        """Spark's Delta writer (see `write`)."""
        writer = df.write.format("delta").mode(mode)
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        elif mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if txn is not None:
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", str(txn[1]))
        if name.startswith("gold."):
            for key, value in GOLD_PROPERTIES.items():
                writer = writer.option(key, value)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.path(name))

    @property
    def is_local(self) -> bool:
        """True when the lake is a local folder (a plain path or a `file:` URI)."""
        return is_local(self.root)

    def txn_done(self, name: str, txn: tuple[str, int]) -> bool:
        """Whether the table's log records application transaction `txn=(app_id, version)` (or a later
        version of it): a retried run's write that had committed (delta-rs, no Spark job)."""
        table = self._rs_table(name)
        return table is not None and _txn_recorded(table, txn)

    def _rs_table(self, name: str):
        """The table as a delta-rs `DeltaTable` (its log loaded once, no Spark job), or None when it
        does not exist."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.rs_uri(name), storage_options=self.rs_options)
        except TableNotFoundError:
            return None

    def write_small(self, df: DataFrame | pa.Table, name: str, txn: tuple[str, int] | None = None,
                    txn_checked: bool = False, predicate: str | None = None, mode: str = "overwrite",
                    merge_schema: bool = False) -> bool:
        """Overwrite a small table whole (or, with `predicate`, its rows matching it) with delta-rs from
        the driver; False when `txn` was already written.

        For tables of a few thousand rows, a Spark Delta write costs several Spark jobs (the log
        replay of the table's snapshot, the write, the commit's bookkeeping) for a file of a few
        kilobytes; here the frame (cached and in one partition, computed by Spark) is fetched as
        Arrow in one job and committed by delta-rs, with the same idempotence: `txn=(app_id,
        version)` is recorded as the commit's application transaction, and a retry that finds it
        writes nothing (the Spark writer's txnAppId/txnVersion). The schema is replaced, like an
        overwrite with `overwriteSchema`. Only for a local lake (see `is_local`); the caller
        keeps rows well below what the driver should hold. `df` may also be the rows already
        fetched (an Arrow table, see `to_arrow_together`). `txn_checked`: the caller has just
        asked `txn_done` for this `txn` (it is not checked again). With `predicate`
        (delta-rs SQL, e.g. `ts >= '2026-01-01T00:00:00+00:00'`) only the rows matching it are
        replaced, as Spark's replaceWhere does: the schema is kept, and every row of `df` must
        match it (delta-rs raises otherwise, and nothing is written).

        Outside gold every column is written nullable, as Spark's Delta writer does (a first batch
        without nulls must not make a column NOT NULL for the batches and erasures after it).
        With `mode="append"` the rows are added (bronze and silver batches, see `Lake.write`'s
        `small`); a table column
        the rows lack is added as nulls (as Spark fills it); with `merge_schema` columns the table
        lacks are added to it (older rows: null), otherwise they are an error.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        table = self._rs_table(name)  # the log loaded once: the txn check, the schema and the commit
        if txn is not None and not txn_checked and table is not None and _txn_recorded(table, txn):
            return False
        data = df if isinstance(df, pa.Table) else df.toArrow()
        if not name.startswith("gold."):  # gold keeps its schemas as they were
            data = _all_nullable(data)
        if mode == "append":
            data = _padded(data, None if table is None else pa.schema(table.schema().to_arrow()))
            schema_mode = "merge" if merge_schema else None
        else:
            schema_mode = None if predicate else "overwrite"
        write_deltalake(
            self.rs_uri(name) if table is None else table, data, mode=mode, schema_mode=schema_mode, predicate=predicate,
            configuration=GOLD_PROPERTIES if name.startswith("gold.") else None,
            commit_properties=CommitProperties(app_transactions=[Transaction(txn[0], txn[1])]) if txn else None,
            storage_options=self.rs_options,
        )
        return True

    def write(self, df: DataFrame, name: str, mode: str = "append", txn: tuple[str, int] | None = None,
              partition_by: list[str] | None = None, replace_where: str | None = None,
              merge_schema: bool = False, small: bool = False) -> None:
        """Write with Delta; `txn=(app_id, version)` makes the write idempotent across retries.

        With `replace_where` (an SQL predicate) an overwrite replaces only the rows matching it;
        with `merge_schema` an append adds the frame's new columns to the table (older rows: null).
        `small`: the caller knows the frame is small (a bronze or silver batch within the
        `small_writes` bounds): on a local lake it is committed by delta-rs from the driver
        (`write_small`: one Spark job to compute it instead of the Delta writer's log replay,
        write and commit jobs), with the same txn idempotence; elsewhere Spark writes it.
        """
        if small and self.is_local and replace_where is None and not partition_by:
            self.write_small(df, name, txn=txn, mode=mode, merge_schema=merge_schema)
            return
        self._write_spark(df, name, mode, txn, partition_by, replace_where, merge_schema)

    def keep_order(self, name: str) -> None:
        """Give a table `ORDERED` names its layout's properties (`ORDERED_PROPERTIES`: one metadata
        commit by delta-rs, no Spark job; nothing when it has them or does not exist yet). Spark's
        writes after it cut row groups with statistics; compaction (`lakehouse.maintenance`) puts
        the files written before in order."""
        if name not in ORDERED:
            return
        table = self._rs_table(name)
        if table is not None and any(table.metadata().configuration.get(k) != v for k, v in ORDERED_PROPERTIES.items()):
            # Not delta properties: delta-rs keeps them only when told not to check their names.
            table.alter.set_table_properties(ORDERED_PROPERTIES, raise_if_not_exists=False)

    def register(self, spark: SparkSession, names: list[str] | None = None, only_missing: bool = False) -> list[str]:
        """Register existing tables as `<layer>.<table>` in the session catalog; the names registered.

        With `only_missing`, a name the catalog already has is left as it is (a table's location
        never changes, and a Delta table is read at its latest version when queried), so a
        long-lived session registers each table once.
        """
        done = []
        registered = _registered_names(spark) if only_missing else set()
        for name in sorted(names or REGISTRY):
            if name in registered:
                continue
            if not self.exists(spark, name):
                continue
            layer = name.split(".", 1)[0]
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
            spark.sql(f"DROP TABLE IF EXISTS {name}")
            spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{self.path(name)}'")
            done.append(name)
        return done


def _txn_recorded(table, txn: tuple[str, int]) -> bool:
    """Whether a delta-rs `DeltaTable`'s log records application transaction `txn` or a later version of it."""
    done = table.transaction_version(txn[0])
    return done is not None and done >= txn[1]


def _nullable_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _nullable_type(f.type), True) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(pa.field(t.value_field.name, _nullable_type(t.value_type), True))
    if pa.types.is_list(t):
        return pa.list_(pa.field(t.value_field.name, _nullable_type(t.value_type), True))
    if pa.types.is_map(t):
        return pa.map_(t.key_type, pa.field(t.item_field.name, _nullable_type(t.item_type), True))
    return t


def _all_nullable(data: pa.Table) -> pa.Table:
    """`data` with every field nullable, nested ones included (as Spark's Delta writer stores them)."""
    schema = pa.schema([pa.field(f.name, _nullable_type(f.type), True) for f in data.schema], metadata=data.schema.metadata)
    return data if schema.equals(data.schema) else data.cast(schema)


def _padded(data: pa.Table, table: pa.Schema | None) -> pa.Table:
    """`data` with each column of `table` it lacks added as nulls of the table's type."""
    if table is None:
        return data
    for f in table:
        if f.name not in data.column_names:
            data = data.append_column(pa.field(f.name, f.type, True), pa.nulls(data.num_rows, f.type))
    return data


def _file_stats(table, files: list[str], *columns: str) -> pa.Table | None:
    """The table's add actions with their flattened statistics (one row per file of `files`, in the
    same order), or None when the two listings disagree or a statistics column is missing."""
    adds = pa.table(table.get_add_actions(flatten=True))
    paths = adds.column("path").to_pylist()
    if len(paths) != len(files) or not all(f.endswith(p.split("/")[-1]) for f, p in zip(files, paths)):
        return None
    return adds if all(c in adds.column_names for c in columns) else None


def _files_holding(table, files: list[str], column: str, value) -> list[str]:
    """The data files (`files`, in the order of the table's add actions) whose min/max statistics of
    `column` admit `value`; a file without them is kept. All files when the two listings disagree."""
    adds = _file_stats(table, files, f"min.{column}", f"max.{column}")
    if adds is None:
        return files
    if isinstance(value, (dt.datetime, float)):  # inexact statistics: skip nothing
        return files
    lows, highs = adds.column(f"min.{column}").to_pylist(), adds.column(f"max.{column}").to_pylist()
    try:
        return [f for f, lo, hi in zip(files, lows, highs) if lo is None or hi is None or lo <= value <= hi]
    except TypeError:  # statistics of another type than the value: skip nothing
        return files


def _files_reaching(table, files: list[str], column: str, instant: dt.datetime) -> list[str]:
    """The data files (`files`, in the order of the table's add actions) whose maximum of `column`
    may be `instant` or later; a file without one is kept. All files when the two listings disagree."""
    adds = _file_stats(table, files, f"max.{column}")
    if adds is None:
        return files
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.timezone.utc)
    early = instant - dt.timedelta(milliseconds=1)  # statistics keep milliseconds: never skip a file in reach
    highs = adds.column(f"max.{column}").to_pylist()
    try:
        return [f for f, hi in zip(files, highs) if hi is None or hi >= early]
    except TypeError:  # statistics of another type than the instant: skip nothing
        return files


def _registered_names(spark: SparkSession) -> set[str]:
    """`layer.table` names the session catalog holds, from its metadata alone.

    (`spark.catalog.tableExists` resolves a Delta table, reading its log in a Spark job: 29 jobs
    after every run of a long-lived session.)
    """
    names = set()
    for layer in sorted({n.split(".", 1)[0] for n in REGISTRY}):
        if spark.catalog.databaseExists(layer):
            names.update(f"{layer}.{r.tableName}" for r in spark.sql(f"SHOW TABLES IN {layer}").collect() if not r.isTemporary)
    return names


def resolve_table(name: str) -> str:
    """Accept `gold.x` or a bare gold table name `x`; raise UnknownTableError otherwise."""
    full = name if "." in name else f"gold.{name}"
    if full not in REGISTRY:
        raise UnknownTableError(name)
    return full
