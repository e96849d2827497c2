"""The dashboard's only reader of the lake: Delta tables -> Arrow/pandas, cached on the Delta version.

Reading uses `deltalake` (delta-rs), never Spark; no other module of the dashboard opens a Delta table
or builds a path into the lake. Every table read is cached keyed on (path, Delta version): a request
first lists `_delta_log` (cheap) and reloads a table only when a new commit is there, so a pipeline
run is picked up without a restart. Derived structures (`derived`) and filtered results (`cached`)
are cached on the versions of the tables they come from plus the filter.

`gold_range` is the one way to ask for "this gold table in this date range"; `resolve` turns a
filter's range into concrete dates on this lake.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from lakehouse.catalog import NAMES as CATALOGUE_NAMES
from lakehouse.objectstore import is_s3, storage_options
from lakehouse.tables import REGISTRY

from ..config import CONFIG
from ..filters import Filters


log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold", "ops")
# the gold tables the dashboard reads (health lists a missing one; warm_up loads them)
GOLD_TABLES = CATALOGUE_NAMES  # every gold table, as declared in lakehouse.catalog


UAD = ("gold", "user_activity_daily")
USERS = ("gold", "users")

_lock = threading.RLock()
_key_locks: dict[str, threading.Lock] = {}
_tables: dict[str, tuple[int, pa.Table]] = {}
_derived: dict[tuple, tuple[tuple, object]] = {}
_results: OrderedDict = OrderedDict()
MAX_RESULTS = 512


def _key_lock(key: str) -> threading.Lock:
    with _lock:
        return _key_locks.setdefault(key, threading.Lock())


def clear_caches() -> None:
    """Forget every cached table and result (tests, benchmarks)."""
    with _lock:
        _tables.clear()
        _derived.clear()
        _results.clear()
        _details.clear()
        _remote.clear()


def clear_result_cache() -> None:
    """Forget filtered results but keep tables and indexes (benchmarks of callback work)."""
    with _lock:
        _results.clear()


def table_path(layer: str, name: str) -> Path | str:
    """Where a table lives: <lake>/<layer>/<name> (a URI string on an object store)."""
    lake = CONFIG.require_lake()
    return f"{lake}/{layer}/{name}" if isinstance(lake, str) else lake / layer / name


def open_table(path: Path | str, version: int | None = None) -> DeltaTable:
    """A table opened by delta-rs (at `version`, default the latest), with the object store's storage
    options (from the AWS_* variables) when the lake is on one."""
    return DeltaTable(str(path), version=version, storage_options=storage_options(str(path)))


_remote: dict[str, DeltaTable] = {}  # object-store tables kept open: a version check reads only new commits


def _remote_version(uri: str) -> int | None:
    """Latest version of a table on an object store: the kept table brought up to date (one LIST of
    the log after the version it has), or None when there is no table."""
    with _key_lock("version:" + uri):
        table = _remote.get(uri)
        try:
            if table is None:
                table = _remote[uri] = open_table(uri)
            else:
                table.update_incremental()
            return table.version()
        except Exception:  # noqa: BLE001 - anything unreadable is "no table"
            _remote.pop(uri, None)
            return None


def delta_version(path: Path | str) -> int | None:
    """Latest committed version of a Delta table, from a listing of its _delta_log (None: no table)."""
    if isinstance(path, str) and is_s3(path):
        return _remote_version(path)
    best = -1
    try:
        with os.scandir(path / "_delta_log") as entries:
            for entry in entries:
                n = entry.name
                if len(n) == 25 and n.endswith(".json") and n[:20].isdigit():
                    best = max(best, int(n[:20]))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    if best >= 0:
        return best
    try:  # only checkpoints left: let delta-rs work it out
        return open_table(path).version()
    except Exception:  # noqa: BLE001 - anything unreadable is "no table"
        return None


def table_version(layer: str, name: str) -> int | None:
    """Current Delta version of <layer>.<name> (None when it does not exist)."""
    return delta_version(table_path(layer, name))


def read_arrow(layer: str, name: str) -> pa.Table | None:
    """The whole table as Arrow, cached on (path, version); None when it does not exist."""
    path = table_path(layer, name)
    version = delta_version(path)
    if version is None:
        return None
    key = str(path)
    hit = _tables.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    with _key_lock(key):
        hit = _tables.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        try:
            table = open_table(key, version=version).to_pyarrow_table()
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot read %s.%s at version %s: %s", layer, name, version, exc)
            return None
        _tables[key] = (version, table)
        return table


def versions(deps: Iterable[tuple[str, str]]) -> tuple:
    """(lake, version of each dependency): the cache key part that changes with a pipeline run."""
    lake = str(CONFIG.require_lake())
    return (lake,) + tuple(table_version(layer, name) for layer, name in deps)


def derived(kind: str, deps: tuple[tuple[str, str], ...], build: Callable[[], object]):
    """A value computed from whole tables, rebuilt when one of their versions changes."""
    vs = versions(deps)
    slot = (vs[0], kind)
    hit = _derived.get(slot)
    if hit is not None and hit[0] == vs:
        return hit[1]
    with _key_lock("derived:" + kind):
        hit = _derived.get(slot)
        if hit is not None and hit[0] == vs:
            return hit[1]
        value = build()
        _derived[slot] = (vs, value)
        return value


def cached(kind: str, deps: tuple[tuple[str, str], ...], params: tuple, build: Callable[[], object]):
    """A filtered result, kept in a small LRU keyed on (kind, table versions, params)."""
    key = (kind, versions(deps), params)
    with _lock:
        if key in _results:
            _results.move_to_end(key)
            return _results[key]
    value = build()
    with _lock:
        _results[key] = value
        while len(_results) > MAX_RESULTS:
            _results.popitem(last=False)
    return value


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(date_as_object=False)


def frame(layer: str, name: str) -> pd.DataFrame | None:
    """A table as pandas (dates as datetime64), cached on its version; None when missing."""
    return derived(f"frame:{layer}.{name}", ((layer, name),),
                   lambda: None if (t := read_arrow(layer, name)) is None else _to_pandas(t))


def gold(name: str) -> pd.DataFrame | None:
    """A gold table as pandas (None when the pipeline has not produced it yet)."""
    return frame("gold", name)


def has(name: str, layer: str = "gold") -> bool:
    """Whether a table exists in the lake."""
    return table_version(layer, name) is not None


def list_tables() -> list[tuple[str, str]]:
    """Every Delta table under the lake's layer folders."""
    lake = CONFIG.require_lake()
    if isinstance(lake, str):  # an object store has no folders to walk: the registry's tables that exist
        return [(layer, name) for layer, name in (n.split(".", 1) for n in sorted(REGISTRY))
                if table_version(layer, name) is not None]
    out = []
    for layer in LAYERS:
        d = lake / layer
        if not d.is_dir():
            continue
        for child in sorted(d.iterdir()):
            if (child / "_delta_log").is_dir():
                out.append((layer, child.name))
    return out


_details: dict[tuple[str, int], dict] = {}


def table_details(layer: str, name: str, version: int) -> dict:
    """Commit time, row count (from the log's add actions: no data read), files and bytes; kept per version."""
    key = (str(table_path(layer, name)), version)
    if key in _details:
        return _details[key]

    def build():
        dt = open_table(table_path(layer, name), version=version)
        hist = dt.history(1)
        ts = hist[0].get("timestamp") if hist else None
        actions = pa.table(dt.get_add_actions(flatten=True))
        rows = int(pc.sum(actions.column("num_records")).as_py() or 0) if "num_records" in actions.column_names \
            else None
        size = int(pc.sum(actions.column("size_bytes")).as_py() or 0) if "size_bytes" in actions.column_names \
            else None
        return {"updated_at": datetime.fromtimestamp(ts / 1000, tz=timezone.utc) if ts else None, "rows": rows,
                "files": actions.num_rows, "size_bytes": size}
    _details[key] = build()
    return _details[key]


def prefetch_details(tables: Iterable[tuple[str, str, int | None]]) -> None:
    """Read the log details of many (layer, name, version) at once: after a pipeline run many logs
    changed, and delta-rs frees the GIL, so they are read in parallel (errors are left for
    `table_details` to raise when asked again)."""
    cold = [(layer, name, v) for layer, name, v in tables
            if v is not None and (str(table_path(layer, name)), v) not in _details]
    if len(cold) <= 1:
        return
    from concurrent.futures import ThreadPoolExecutor

    def _prefetch(item):
        try:
            table_details(*item)
        except Exception:  # noqa: BLE001 - reported per table by the caller
            pass

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(_prefetch, cold))


def dataset(layer: str, name: str, columns: Iterable[str]):
    """<layer>.<name> at its current version as a pyarrow dataset of `columns` only (None: no table, or
    unreadable): nothing is read until a query scans it. Cached per version, so a new Delta version
    (e.g. after `lakehouse forget`) gives a new dataset."""
    offered = set(columns)

    def build():
        path = table_path(layer, name)
        version = delta_version(path)
        if version is None:
            return None
        try:
            ds = open_table(path, version=version).to_pyarrow_dataset()
        except Exception as exc:  # noqa: BLE001 - an unreadable table is left out
            log.warning("cannot open %s.%s at version %s as a dataset: %s", layer, name, version, exc)
            return None
        return ds.replace_schema(pa.schema([f for f in ds.schema if f.name in offered]))
    return derived(f"dataset:{layer}.{name}", ((layer, name),), build)


def lake_bounds() -> tuple[date, date] | None:
    """First and last activity_date of the lake (engagement_daily, else user_activity_daily)."""
    def build():
        for name in ("engagement_daily", "user_activity_daily"):
            t = read_arrow("gold", name)
            if t is not None and t.num_rows:
                mm = pc.min_max(t.column("activity_date"))
                lo, hi = mm["min"].as_py(), mm["max"].as_py()
                if lo is not None:
                    return lo, hi
        return None
    return derived("bounds", (("gold", "engagement_daily"), UAD), build)


def resolve(f: Filters) -> tuple[date, date] | None:
    """The concrete date range of a filter on this lake (None: empty lake, or no day of it in range)."""
    b = lake_bounds()
    if b is None or f.is_empty_on(*b):
        return None
    return f.resolve(*b)


def gold_range(name: str, f: Filters) -> pd.DataFrame | None:
    """The rows of gold.<name> whose `activity_date` lies in f's range on this lake (both ends inclusive);
    None when the table does not exist or no day of the lake is in the range."""
    rng = resolve(f)
    table = gold(name)
    if rng is None or table is None:
        return None
    return table[table["activity_date"].between(pd.Timestamp(rng[0]), pd.Timestamp(rng[1]))]
