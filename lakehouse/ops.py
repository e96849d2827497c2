"""Small bookkeeping tables under `<lake>/ops/`, read and appended with delta-rs.

They hold a few rows per run (file manifest, layer progress, run log), so they go through
delta-rs in-process instead of Spark jobs; Spark still reads them as ordinary Delta tables.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from lakehouse.tables import Lake

TS = pa.timestamp("us", tz="UTC")
SCHEMAS = {
    "ops.ingest_files": pa.schema([
        ("batch_id", pa.int64()), ("feed", pa.string()), ("file_path", pa.string()), ("size", pa.int64()),
        ("modified_at", TS), ("status", pa.string()), ("recorded_at", TS),
        # added later (null in older rows: the landing folder): the source's name and kind (lakehouse.sources)
        ("source", pa.string()), ("source_kind", pa.string()),
    ]),
    "ops.progress": pa.schema([("layer", pa.string()), ("batch_id", pa.int64()), ("completed_at", TS)]),
    "ops.pipeline_runs": pa.schema([
        ("run_id", pa.string()), ("started_at", TS), ("ended_at", TS), ("status", pa.string()),
        ("timezone", pa.string()), ("files", pa.int64()), ("lines", pa.int64()), ("silver_rows", pa.int64()),
        ("duplicates", pa.int64()), ("quarantined", pa.int64()), ("rows_json", pa.string()),
        ("quarantine_json", pa.string()), ("durations_json", pa.string()), ("recomputed", pa.string()),
        ("message", pa.string()),
        ("spark_json", pa.string()),  # added later: Spark jobs and stages per layer (null in older rows)
    ]),
    "ops.expectations": pa.schema([
        ("run_id", pa.string()), ("checked_at", TS), ("table_name", pa.string()), ("rule", pa.string()),
        ("action", pa.string()), ("failing_rows", pa.int64()), ("passed", pa.bool_()), ("detail", pa.string()),
    ]),
    "ops.gold_state": pa.schema([
        ("batch_id", pa.int64()), ("fingerprint", pa.string()), ("range_start", pa.string()), ("range_end", pa.string()),
        ("event_names_json", pa.string()), ("versions_json", pa.string()), ("mode", pa.string()), ("since", pa.string()),
        ("recorded_at", TS),
    ]),
    "ops.silver_state": pa.schema([
        ("batch_id", pa.int64()), ("sessions_settings", pa.string()), ("recorded_at", TS),
    ]),
    "ops.erasures": pa.schema([
        ("erasure_id", pa.string()), ("requested_at", TS), ("completed_at", TS), ("user_id_hash", pa.string()),
        ("rows_removed_json", pa.string()), ("status", pa.string()),
        # added later (null in older rows): the tables whose replaced data files still held the erased
        # rows, when vacuum may delete them (retention passed) and when they were deleted
        ("files_tables_json", pa.string()), ("files_due_at", TS), ("files_deleted_at", TS),
    ]),
}


def now() -> dt.datetime:
    """The current UTC time, to the microsecond."""
    return dt.datetime.now(dt.timezone.utc)


def read(lake: Lake, name: str) -> list[dict]:
    """Every row of an ops table (empty when it does not exist yet)."""
    try:
        return DeltaTable(lake.rs_uri(name), storage_options=lake.rs_options).to_pyarrow_table().to_pylist()
    except TableNotFoundError:
        return []


def append(lake: Lake, name: str, rows: list[dict]) -> None:
    """Append rows in one Delta commit.

    A column added to SCHEMAS since the table was created is added to it by this commit (older
    rows read it as null); an unchanged schema commits no metadata.
    """
    if not rows:
        return
    schema = SCHEMAS[name]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    write_deltalake(lake.rs_uri(name), table, mode="append", schema_mode="merge", storage_options=lake.rs_options)


def last_commit_rows(lake: Lake, name: str) -> int:
    """Rows written by a table's latest commit, from its Delta log (no data scan)."""
    history = DeltaTable(lake.rs_uri(name), storage_options=lake.rs_options).history(1)
    metrics = history[0].get("operationMetrics") or {} if history else {}
    # Spark's Delta writer records numOutputRows, delta-rs num_added_rows.
    return int(metrics.get("numOutputRows", metrics.get("num_added_rows", 0)) or 0)


def table_version(lake: Lake, name: str) -> int | None:
    """The latest version of any lake table, or None when it does not exist."""
    try:
        return DeltaTable(lake.rs_uri(name), storage_options=lake.rs_options).version()
    except TableNotFoundError:
        return None


def live_rows(lake: Lake, name: str, reaching: tuple[str, object] | None = None) -> int | None:
    """Rows in a table's latest version, summed from its files' statistics (no data scan);
    0 for a missing table, None when a file has no row count (or, with `reaching`, no maximum).

    `reaching=(column, value)` counts only the files whose maximum of `column` is at least `value`
    (an upper bound of the rows from `value` on; timestamp statistics keep milliseconds, so pass a
    value a millisecond early)."""
    try:
        adds = pa.table(DeltaTable(lake.rs_uri(name), storage_options=lake.rs_options).get_add_actions(flatten=True))
    except TableNotFoundError:
        return 0
    if "num_records" not in adds.column_names or adds.column("num_records").null_count:
        return None
    counts = adds.column("num_records").to_pylist()
    if reaching is None:
        return int(sum(counts))
    column, value = reaching
    if f"max.{column}" not in adds.column_names or adds.column(f"max.{column}").null_count:
        return None
    return int(sum(n for n, high in zip(counts, adds.column(f"max.{column}").to_pylist()) if high >= value))


def pending_bytes(lake: Lake, after_batch: int) -> int:
    """Bytes of the landed files in committed ingest batches after `after_batch`."""
    try:
        rows = read(lake, "ops.ingest_files")
    except TableNotFoundError:
        return 0
    return sum(r["size"] or 0 for r in rows if r["batch_id"] > after_batch and r["status"] == "committed")


def batch_sources(lake: Lake) -> dict[int, dict[str, set[tuple[str, str]]]]:
    """The (source name, kind) pairs with files in each committed ingest batch, per feed.

    Rows recorded before sources existed are the landing's (`landing`, `landing`).
    """
    out: dict[int, dict[str, set[tuple[str, str]]]] = {}
    for r in read(lake, "ops.ingest_files"):
        if r["status"] == "committed":
            pair = (r.get("source") or "landing", r.get("source_kind") or "landing")
            out.setdefault(r["batch_id"], {}).setdefault(r["feed"], set()).add(pair)
    return out


def batch_feeds(lake: Lake) -> dict[int, set[str]]:
    """The feeds (`events`, `users`) with landed files in each committed ingest batch.

    What silver needs to know about a batch without a Spark job: bronze writes a feed's rows for a
    batch exactly when the batch has files of that feed.
    """
    try:
        rows = read(lake, "ops.ingest_files")
    except TableNotFoundError:
        return {}
    out: dict[int, set[str]] = {}
    for r in rows:
        if r["status"] == "committed":
            out.setdefault(r["batch_id"], set()).add(r["feed"])
    return out
