"""The dashboard's only reader of the lake: Delta tables -> Arrow/pandas, cached on the Delta version.

Reading uses `deltalake` (delta-rs), never Spark. Every table read is cached
keyed on (path, Delta version): a request first lists `_delta_log` (cheap) and
reloads a table only when a new commit is there, so a pipeline run is picked up
without a restart. Derived structures and filtered results are cached on the
versions of the tables they come from plus the filter.

User metrics under a country/device/gender/age-group filter are computed from
gold.user_activity_daily as distinct users (never sums of daily distincts);
without such filters the gold aggregates are used directly.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from .config import CONFIG
from .definitions import LABELS
from .filters import DIMENSIONS, Filters, previous_period
from .wording import count

log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold", "ops")
GOLD_TABLES = (
    "engagement_daily", "engagement_monthly", "lifecycle_daily", "retention_daily", "retention_weekly",
    "funnel_daily", "demographics", "loyalty_daily", "loyalty_balances", "revenue_daily", "user_revenue",
    "sessions_daily", "user_activity_daily", "users", "segment_summary", "cluster_profiles",
    "event_counts_daily", "page_views_daily", "hourly_activity", "quiz_daily", "course_progress",
    "quarantine_summary", "funnel_entries",
)
EPOCH = date(1970, 1, 1)
BIG = np.int64(1 << 40)
UAD = ("gold", "user_activity_daily")
USERS = ("gold", "users")
# columns never shown, whatever a future gold.users carries
PRIVATE_COLUMN_MARKERS = ("email", "password", "phone")


# --------------------------------------------------------------------------- dates

def d2i(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def i2d(i: int) -> date:
    """Inverse of d2i."""
    return EPOCH + timedelta(days=int(i))


def _ts(days) -> pd.DatetimeIndex:
    """Day numbers -> pandas datetimes (what the figures plot)."""
    return pd.to_datetime(np.asarray(days, dtype="int64"), unit="D")


def period_code(day, grain: str):
    """Period number of a day number: the day itself, its Monday-week, or its calendar month."""
    day = np.asarray(day, dtype=np.int64)
    if grain == "week":
        return (day + 3) // 7  # 1970-01-05 (day 4) is a Monday
    if grain == "month":
        return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return day


def period_start(code, grain: str):
    """First day number of a period."""
    code = np.asarray(code, dtype=np.int64)
    if grain == "week":
        return code * 7 - 3
    if grain == "month":
        return code.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return code


def period_end(code, grain: str):
    """Last day number of a period."""
    return period_start(np.asarray(code, dtype=np.int64) + 1, grain) - 1


# --------------------------------------------------------------------------- table reading

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


def clear_result_cache() -> None:
    """Forget filtered results but keep tables and indexes (benchmarks of callback work)."""
    with _lock:
        _results.clear()


def table_path(layer: str, name: str) -> Path:
    """Where a table lives: <lake>/<layer>/<name>."""
    return CONFIG.require_lake() / layer / name


def delta_version(path: Path) -> int | None:
    """Latest committed version of a Delta table, from a listing of its _delta_log (None: no table)."""
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
        return DeltaTable(str(path)).version()
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
            table = DeltaTable(key, version=version).to_pyarrow_table()
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


# --------------------------------------------------------------------------- lake range

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


def _on_dates(df: pd.DataFrame, lo, hi) -> pd.DataFrame:
    """The rows of a gold table whose `activity_date` lies in [lo, hi] (both inclusive)."""
    return df[df["activity_date"].between(pd.Timestamp(lo), pd.Timestamp(hi))]


def resolve(f: Filters) -> tuple[date, date] | None:
    """The concrete date range of a filter on this lake (None: empty lake, or no day of it in range)."""
    b = lake_bounds()
    if b is None or f.is_empty_on(*b):
        return None
    return f.resolve(*b)


# --------------------------------------------------------------------------- the activity index

@dataclass
class Activity:
    """user_activity_daily as numpy arrays sorted by (user, day), with encoded dimensions."""

    user: np.ndarray          # int32 user code (index into user_ids)
    day: np.ndarray           # int32 day number
    is_new: np.ndarray
    codes: dict[str, np.ndarray]   # dimension -> int16 category codes
    cats: dict[str, list[str]]     # dimension -> category names
    num: dict[str, np.ndarray]     # numeric columns
    user_ids: np.ndarray           # object array of ids by code
    first_seen: np.ndarray         # int64 day number per user code
    starts: np.ndarray             # row offset of each user code's block (len n_users + 1)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def day_order(self) -> tuple[np.ndarray, int, np.ndarray]:
        """(row indices sorted by day, first day, offset of each day in that order) (memoised)."""
        memo = self.__dict__.get("_day_order")
        if memo is None:
            order = np.argsort(self.day, kind="stable")
            d = self.day[order]
            first = int(d[0]) if len(d) else 0
            last = int(d[-1]) if len(d) else -1
            offsets = np.searchsorted(d, np.arange(first, last + 2))
            memo = (order, first, offsets)
            self.__dict__["_day_order"] = memo
        return memo

    def period(self, grain: str) -> np.ndarray:
        """Period code of every row (memoised per grain)."""
        memo = self.__dict__.setdefault("_period_memo", {})
        if grain not in memo:
            memo[grain] = period_code(self.day, grain)
        return memo[grain]


NUMERIC = ("events", "sessions", "purchases", "revenue", "points_earned", "points_redeemed")


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    arr = pc.fill_null(column.combine_chunks(), "unknown")
    enc = arr.dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int16), [str(x) for x in enc.dictionary.to_pylist()]


def _build_activity() -> Activity | None:
    t = read_arrow(*UAD)
    if t is None:
        return None
    users = read_arrow(*USERS)
    ids = pd.Index(users.column("user_id").to_pandas() if users is not None else [], dtype=object)
    uad_ids = t.column("user_id").to_pandas().astype(object)
    code = ids.get_indexer(uad_ids)
    unknown = code < 0
    user_ids = ids.to_numpy(dtype=object)
    if unknown.any():
        extra = pd.Index(pd.unique(uad_ids[unknown]))
        code[unknown] = len(ids) + extra.get_indexer(uad_ids[unknown])
        user_ids = np.concatenate([user_ids, extra.to_numpy(dtype=object)])
    day = pc.cast(t.column("activity_date"), pa.int32()).to_numpy()
    order = np.lexsort((day, code))
    user = code[order].astype(np.int32)
    day = day[order].astype(np.int32)
    codes, cats = {}, {}
    for dim in DIMENSIONS:
        if dim in t.column_names:
            c, names = _encode(t.column(dim))
            codes[dim], cats[dim] = c[order], names
        else:
            codes[dim], cats[dim] = np.zeros(len(order), np.int16), ["unknown"]
    num = {}
    for col in NUMERIC:
        if col in t.column_names:
            a = pc.fill_null(t.column(col), 0).to_numpy()
            num[col] = a[order]
        else:
            num[col] = np.zeros(len(order))
    is_new = pc.fill_null(t.column("is_new"), False).to_numpy()[order] if "is_new" in t.column_names \
        else np.zeros(len(order), bool)
    n_users = len(user_ids)
    first_seen = np.full(n_users, BIG, dtype=np.int64)
    if users is not None and "first_seen_date" in users.column_names:
        fs = pc.cast(users.column("first_seen_date"), pa.int32()).to_numpy(zero_copy_only=False)
        fs = np.where(np.isnan(fs.astype(float)), BIG, fs).astype(np.int64) if fs.dtype.kind == "f" else fs
        first_seen[: len(fs)] = fs
    # users without a first_seen_date: their first active day
    starts = np.searchsorted(user, np.arange(n_users + 1), side="left")
    has_rows = starts[1:] > starts[:-1]
    first_day = np.full(n_users, BIG, dtype=np.int64)
    first_day[has_rows] = day[starts[:-1][has_rows]]
    first_seen = np.minimum(first_seen, first_day)
    return Activity(user=user, day=day, is_new=is_new, codes=codes, cats=cats, num=num, user_ids=user_ids,
                    first_seen=first_seen, starts=starts)


def activity() -> Activity | None:
    """The cached activity index (None when user_activity_daily does not exist)."""
    return derived("activity", (UAD, USERS), _build_activity)


def users_frame() -> pd.DataFrame | None:
    """gold.users without any private column (never an email)."""
    def build():
        u = gold("users")
        if u is None:
            return None
        keep = [c for c in u.columns if not any(m in c.lower() for m in PRIVATE_COLUMN_MARKERS)]
        return u[keep]
    return derived("users_frame", (USERS,), build)


USER_DIMS = ("gender", "age_group", "country")


@dataclass
class UserIndex:
    """gold.users' demographic columns encoded as integer codes (row order of users_frame)."""

    codes: dict[str, np.ndarray]
    cats: dict[str, list[str]]
    first_seen: np.ndarray  # day number (BIG when unknown)


def user_index() -> UserIndex | None:
    """The cached UserIndex (None when gold.users does not exist)."""
    def build():
        users = users_frame()
        if users is None:
            return None
        codes, cats = {}, {}
        for dim in USER_DIMS:
            if dim in users.columns:
                c, names = pd.factorize(users[dim].fillna("unknown").astype(str), sort=True)
                codes[dim], cats[dim] = c.astype(np.int32), [str(x) for x in names]
            else:
                codes[dim], cats[dim] = np.zeros(len(users), np.int32), ["unknown"]
        fs = users["first_seen_date"] if "first_seen_date" in users.columns else pd.Series(pd.NaT, index=users.index)
        days = fs.to_numpy(dtype="datetime64[D]").astype(np.int64)
        days = np.where(pd.isna(fs).to_numpy(), BIG, days)
        return UserIndex(codes=codes, cats=cats, first_seen=days)
    return derived("user_index", (USERS,), build)


def users_mask(users: pd.DataFrame, f: Filters) -> np.ndarray:
    """Users matching f's country/gender/age-group filter (device is a per-day attribute: ignored)."""
    m = np.ones(len(users), dtype=bool)
    ui = user_index()
    for dim in USER_DIMS:
        wanted = getattr(f, dim)
        if not wanted:
            continue
        if ui is not None and len(ui.codes[dim]) == len(users):
            lut = np.array([c in wanted for c in ui.cats[dim]], dtype=bool)
            m &= lut[ui.codes[dim]]
        elif dim in users.columns:
            m &= users[dim].fillna("unknown").isin(wanted).to_numpy()
    return m


def _ufilter_key(f: Filters) -> tuple:
    return (f.country, f.device, f.gender, f.age_group)


# --------------------------------------------------------------------------- core distinct counts

def rolling_distinct(user: np.ndarray, day: np.ndarray, window: int, lo: int, hi: int) -> np.ndarray:
    """Distinct users active in [d-window+1, d] for every d in [lo, hi].

    `user`, `day` are rows sorted by (user, day). Each row covers the days
    [day, min(day + window, next active day of that user)), so no user is
    counted twice; a difference array turns the covers into counts in O(n).
    """
    n = hi - lo + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(user) == 0:
        return np.zeros(n, dtype=np.int64)
    day = day.astype(np.int64)
    nxt = np.empty_like(day)
    nxt[:-1] = day[1:]
    nxt[-1] = BIG
    same = np.empty(len(user), dtype=bool)
    same[:-1] = user[1:] == user[:-1]
    same[-1] = False
    end = np.minimum(day + window, np.where(same, nxt, BIG))
    s = np.clip(day, lo, hi + 1) - lo
    e = np.clip(end, lo, hi + 1) - lo
    diff = np.bincount(s, minlength=n + 2)[: n + 1] - np.bincount(e, minlength=n + 2)[: n + 1]
    return np.cumsum(diff)[:n].astype(np.int64)


def distinct_pairs(user: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Boolean: first row of each (user, period) run in rows sorted by (user, day)."""
    if len(user) == 0:
        return np.zeros(0, dtype=bool)
    first = np.empty(len(user), dtype=bool)
    first[0] = True
    first[1:] = (user[1:] != user[:-1]) | (period[1:] != period[:-1])
    return first


def _row_index(act: Activity, f: Filters | None, lo: int, hi: int) -> np.ndarray:
    """Ascending indices (= sorted by user, day) of rows with lo <= day <= hi passing f's filters.

    A short range is cut out of a day-sorted order (no scan of the whole table); a long one is a
    plain scan. Indexing with the result works like the boolean mask it replaces.
    """
    order, first, offsets = act.day_order()
    if not len(order) or hi < lo:
        return np.zeros(0, dtype=np.int64)
    a = offsets[int(np.clip(lo - first, 0, len(offsets) - 1))]
    b = offsets[int(np.clip(hi + 1 - first, 0, len(offsets) - 1))]
    if (b - a) * 3 > len(order):
        rows = np.flatnonzero((act.day >= lo) & (act.day <= hi))
    else:
        rows = np.sort(order[a:b])
    if f is not None:
        for dim in DIMENSIONS:
            wanted = getattr(f, dim)
            if wanted:
                lut = np.array([c in wanted for c in act.cats[dim]] + [False], dtype=bool)
                rows = rows[lut[act.codes[dim][rows]]]
    return rows


def _periods(lo: int, hi: int, grain: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Period codes touching [lo, hi], their first and last day."""
    codes = np.arange(period_code(lo, grain), period_code(hi, grain) + 1)
    return codes, period_start(codes, grain), period_end(codes, grain)


def _partial(starts: np.ndarray, ends: np.ndarray, lo: int, hi: int, grain: str) -> np.ndarray:
    """A week/month is partial when the range (clipped to the lake) does not cover all of its days."""
    if grain == "day":
        return np.zeros(len(starts), dtype=bool)
    return (starts < lo) | (ends > hi)


# --------------------------------------------------------------------------- daily metrics

DAILY_COLUMNS = ("dau", "wau", "mau", "stickiness", "new_users", "new_active_users", "existing_active_users",
                 "orders", "revenue", "buyers", "failed_payments", "points_earned", "points_redeemed",
                 "earners", "redeemers", "participants", "outstanding_points", "sessions", "events")


def _gold_daily(lo: date, hi: date) -> pd.DataFrame:
    """Daily metrics straight from the gold aggregates (no user filter)."""
    idx = pd.date_range(pd.Timestamp(lo), pd.Timestamp(hi), freq="D", name="date")
    n = len(idx)
    a = d2i(lo)
    cols: dict[str, np.ndarray] = {}
    sources = {
        "engagement_daily": ["dau", "wau", "mau", "stickiness", "new_users", "new_active_users",
                             "existing_active_users"],
        "revenue_daily": ["orders", "revenue", "buyers", "failed_payments"],
        "loyalty_daily": ["points_earned", "points_redeemed", "earners", "redeemers", "participants",
                          "outstanding_points"],
        "sessions_daily": ["sessions"],
    }
    for name, names in sources.items():
        t = read_arrow("gold", name)
        if t is None:
            for c in names:
                cols[c] = np.full(n, np.nan)
            continue
        pos = pc.cast(t.column("activity_date"), pa.int32()).to_numpy() - a
        ok = (pos >= 0) & (pos < n)
        for c in names:
            out = np.full(n, np.nan)
            if c in t.column_names:
                vals = t.column(c).to_numpy(zero_copy_only=False).astype(float)
                out[pos[ok]] = vals[ok]
            cols[c] = out
    ev = np.full(n, np.nan)
    t = read_arrow("gold", "event_counts_daily")
    if t is not None and t.num_rows:
        pos = pc.cast(t.column("activity_date"), pa.int32()).to_numpy() - a
        keep = (pos >= 0) & (pos < n) & (t.column("event").to_numpy(zero_copy_only=False) != "app_uninstall")
        ev = np.bincount(pos[keep], weights=t.column("events").to_numpy(zero_copy_only=False)[keep].astype(float),
                         minlength=n)[:n]
    cols["events"] = ev
    return pd.DataFrame(cols, index=idx)


def _computed_daily(f: Filters, lo_d: date, hi_d: date) -> pd.DataFrame:
    """Daily metrics computed from user_activity_daily rows passing f's user filters."""
    act = activity()
    lo, hi = d2i(lo_d), d2i(hi_d)
    n = hi - lo + 1
    idx = _ts(np.arange(lo, hi + 1))
    if act is None:
        return pd.DataFrame({c: np.full(n, np.nan) for c in DAILY_COLUMNS}, index=idx.rename("date"))
    rows = _row_index(act, f, lo - 29, hi)
    u, d = act.user[rows], act.day[rows]
    wau = rolling_distinct(u, d, 7, lo, hi).astype(float)
    mau = rolling_distinct(u, d, 30, lo, hi).astype(float)
    inr = d >= lo
    rows_r = rows[inr]
    dr = (d[inr] - lo).astype(np.int64)
    ur = u[inr]

    def count(m=None):
        return np.bincount(dr if m is None else dr[m], minlength=n)[:n].astype(float)

    def total(values):
        return np.bincount(dr, weights=values, minlength=n)[:n]

    num = {k: v[rows_r] for k, v in act.num.items()}
    dau = count()
    new_active = count(act.first_seen[ur] == d[inr])
    purchases, pe, pr = num["purchases"], num["points_earned"], num["points_redeemed"]
    users = None if f.device else users_frame()
    if users is None:
        new_users = new_active
    else:
        fs = act.first_seen[: len(users)][users_mask(users, f)]
        fs = fs[(fs >= lo) & (fs <= hi)] - lo
        new_users = np.bincount(fs, minlength=n)[:n].astype(float)
    # outstanding points: everything earned minus redeemed up to the end of the day (filtered rows)
    before = _row_index(act, f, -(1 << 30), lo - 1)
    base = float(act.num["points_earned"][before].sum() - act.num["points_redeemed"][before].sum())
    earned, redeemed = total(pe), total(pr)
    with np.errstate(invalid="ignore", divide="ignore"):
        stick = np.where(mau > 0, dau / np.maximum(mau, 1), np.nan)
    cols = {
        "dau": dau, "wau": wau, "mau": mau, "stickiness": stick, "new_users": new_users,
        "new_active_users": new_active, "existing_active_users": dau - new_active,
        "orders": total(purchases), "revenue": total(num["revenue"]), "buyers": count(purchases > 0),
        "failed_payments": np.full(n, np.nan),  # not in user_activity_daily: only without user filters
        "points_earned": earned, "points_redeemed": redeemed, "earners": count(pe > 0),
        "redeemers": count(pr > 0), "participants": count((pe > 0) | (pr > 0)),
        "outstanding_points": base + np.cumsum(earned - redeemed),
        "sessions": total(num["sessions"]), "events": total(num["events"]),
    }
    return pd.DataFrame(cols, index=idx.rename("date"))


def daily_metrics(f: Filters, lo: date, hi: date) -> pd.DataFrame:
    """Per-day metrics on [lo, hi] under f's user filters (gold aggregates when there are none)."""
    deps = (UAD, USERS, ("gold", "engagement_daily"), ("gold", "revenue_daily"), ("gold", "loyalty_daily"),
            ("gold", "sessions_daily"), ("gold", "event_counts_daily"))
    if f.user_filtered:
        return cached("daily", deps, (_ufilter_key(f), lo, hi), lambda: _computed_daily(f, lo, hi))

    def build():
        out = _gold_daily(lo, hi)
        # a gold aggregate the pipeline has not written yet: same numbers from user_activity_daily
        gaps = [c for c in out.columns if c != "failed_payments" and out[c].isna().all()]
        if gaps and activity() is not None:
            computed = _computed_daily(Filters(), lo, hi)
            for c in gaps:
                out[c] = computed[c].to_numpy()
        return out
    return cached("daily", deps, ((), lo, hi), build)


# --------------------------------------------------------------------------- KPIs

@dataclass
class Kpi:
    """One overview card: value in the range, value in the previous period, daily sparkline."""

    key: str
    label: str
    value: float | None
    previous: float | None
    spark: pd.Series
    fmt: str = "int"          # int | pct | money | float
    note: str = ""
    unit: str = ""            # shown after the value, e.g. the reporting currency of money
    info_key: str = ""        # the definition shown by the (i) tooltip (default: key)

    @property
    def definition_key(self) -> str:
        """Key of the card's definition in dashboard.definitions."""
        return self.info_key or self.key

    @property
    def change(self) -> float | None:
        """Change against the previous period (None when not comparable): relative for counts and money,
        the difference (in rate units, 0.048 = 4.8 percentage points) for a rate (fmt 'pct')."""
        if self.value is None or self.previous is None or not np.isfinite(self.previous):
            return None
        if not np.isfinite(self.value):
            return None
        if self.fmt == "pct":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous)

    @property
    def change_text(self) -> str:
        """'+17.5%' for a relative change, '+4.8 pp' (percentage points) for a change of a rate; '' when none."""
        ch = self.change
        if ch is None:
            return ""
        return f"{ch * 100:+.1f} pp" if self.fmt == "pct" else f"{ch:+.1%}"


def _nanmean(s: pd.Series) -> float | None:
    v = s.astype(float).dropna()
    return float(v.mean()) if len(v) else None


def _last(s: pd.Series) -> float | None:
    v = s.astype(float).dropna()
    return float(v.iloc[-1]) if len(v) else None


def _sum(s: pd.Series) -> float | None:
    v = s.astype(float)
    return float(v.sum()) if v.notna().any() else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def _of_active(rc: dict, key: str, word: str) -> str:
    """'472 buyers of 1,511 active users in the range (line: per day)' under a range-level rate."""
    if not rc:
        return ""
    return f"{count(rc.get(key, 0), word)} of {count(rc.get('active', 0), 'active user')} in the range (line: per day)"


def range_counts(f: Filters, lo: date, hi: date) -> dict[str, int] | None:
    """Distinct users in [lo, hi] under f's filters: active, new (first seen in the range), buyers, participants."""
    act = activity()
    if act is None:
        return None

    def build():
        a, b = d2i(lo), d2i(hi)
        sel = _row_index(act, f, a, b)
        u = act.user[sel]

        def distinct(m=None):
            x = u if m is None else u[m]
            return int(len(x) and (np.r_[True, x[1:] != x[:-1]]).sum())  # rows are sorted by user

        first_u = u[np.r_[True, u[1:] != u[:-1]]] if len(u) else u
        fs = act.first_seen[first_u]
        part = (act.num["points_earned"][sel] > 0) | (act.num["points_redeemed"][sel] > 0)
        return {"active": distinct(), "new": int(((fs >= a) & (fs <= b)).sum()),
                "buyers": distinct(act.num["purchases"][sel] > 0), "participants": distinct(part)}
    return cached("range_counts", (UAD, USERS), (_ufilter_key(f), lo, hi), build)


def _periods_to_compare(f: Filters):
    """(lo, hi, previous lo, previous hi, whether the previous period is inside the lake)."""
    bounds = lake_bounds()
    rng = resolve(f)
    if bounds is None or rng is None:
        return None
    lo, hi = rng
    plo, phi = previous_period(lo, hi)
    return lo, hi, plo, phi, plo >= bounds[0]


def _cur_prev(f: Filters, p) -> tuple[pd.DataFrame, pd.DataFrame | None, dict, dict]:
    lo, hi, plo, phi, has_prev = p
    daily = daily_metrics(f, plo if has_prev else lo, hi)
    cur = daily.loc[pd.Timestamp(lo):pd.Timestamp(hi)]
    prev = daily.loc[pd.Timestamp(plo):pd.Timestamp(phi)] if has_prev else None
    rc = range_counts(f, lo, hi) or {}
    prc = (range_counts(f, plo, phi) if has_prev else None) or {}
    return cur, prev, rc, prc


def _pv(prev: pd.DataFrame | None, fn, col):
    return fn(prev[col]) if prev is not None and len(prev) else None


def kpis(f: Filters) -> list[Kpi] | None:
    """The overview cards for the selected range, compared with the previous period of equal length."""
    p = _periods_to_compare(f)
    if p is None:
        return None
    lo, hi, plo, phi, has_prev = p
    cur, prev, rc, prc = _cur_prev(f, p)
    cards = [
        Kpi("dau", "DAU (avg)", _nanmean(cur["dau"]), _pv(prev, _nanmean, "dau"), cur["dau"]),
        Kpi("wau", "WAU", _last(cur["wau"]), _pv(prev, _last, "wau"), cur["wau"]),
        Kpi("mau", "MAU", _last(cur["mau"]), _pv(prev, _last, "mau"), cur["mau"]),
        Kpi("stickiness", LABELS["stickiness_avg"], _nanmean(cur["stickiness"]),
            _pv(prev, _nanmean, "stickiness"), cur["stickiness"], fmt="pct", info_key="stickiness_avg"),
        Kpi("new_users", "New users", _sum(cur["new_users"]), _pv(prev, _sum, "new_users"), cur["new_users"]),
    ]
    if rc:
        cards.append(Kpi("active_users", "Active users", float(rc["active"]),
                         float(prc["active"]) if prc else None, cur["dau"],
                         note=f"{rc['new']:,} new · {rc['active'] - rc['new']:,} existing"))
    cards.append(Kpi("outstanding_points", "Outstanding points", _last(cur["outstanding_points"]),
                     _pv(prev, _last, "outstanding_points"), cur["outstanding_points"]))
    cards.append(Kpi("revenue", "Revenue", _sum(cur["revenue"]), _pv(prev, _sum, "revenue"), cur["revenue"],
                     fmt="money", unit=reporting_currency()))
    with np.errstate(invalid="ignore", divide="ignore"):
        conv_spark = cur["buyers"] / cur["dau"].where(cur["dau"] > 0)
    cards.append(Kpi("conversion_rate", LABELS["range_conversion_rate"], _ratio(rc.get("buyers"), rc.get("active")),
                     _ratio(prc.get("buyers"), prc.get("active")), conv_spark, fmt="pct",
                     note=_of_active(rc, "buyers", "buyer"), info_key="range_conversion_rate"))
    d7 = retention_kpi(f, 7, lo, hi)
    cards.append(d7 if d7 is not None else Kpi("d7", "D7 retention", None, None, pd.Series(dtype=float),
                                               fmt="pct", note="gold.retention_daily not in the lake yet"))
    return cards


def revenue_kpis(f: Filters) -> list[Kpi] | None:
    """Revenue page cards: revenue, orders, buyers, ARPU, ARPPU, conversion (distinct users over the range)."""
    p = _periods_to_compare(f)
    if p is None:
        return None
    cur, prev, rc, prc = _cur_prev(f, p)
    rev, prev_rev = _sum(cur["revenue"]), _pv(prev, _sum, "revenue")
    cur_code = reporting_currency()
    with np.errstate(invalid="ignore", divide="ignore"):
        dau = cur["dau"].where(cur["dau"] > 0)
        buyers_d = cur["buyers"].where(cur["buyers"] > 0)
        return [
            Kpi("revenue", "Revenue", rev, prev_rev, cur["revenue"], fmt="money", unit=cur_code),
            Kpi("orders", "Orders", _sum(cur["orders"]), _pv(prev, _sum, "orders"), cur["orders"]),
            Kpi("buyers", "Buyers", rc.get("buyers"), prc.get("buyers"), cur["buyers"]),
            Kpi("arpu", "ARPU", _ratio(rev, rc.get("active")), _ratio(prev_rev, prc.get("active")),
                cur["revenue"] / dau, fmt="money", unit=cur_code),
            Kpi("arppu", "ARPPU", _ratio(rev, rc.get("buyers")), _ratio(prev_rev, prc.get("buyers")),
                cur["revenue"] / buyers_d, fmt="money", unit=cur_code),
            Kpi("conversion_rate", LABELS["range_conversion_rate"], _ratio(rc.get("buyers"), rc.get("active")),
                _ratio(prc.get("buyers"), prc.get("active")), cur["buyers"] / dau, fmt="pct",
                note=_of_active(rc, "buyers", "buyer"), info_key="range_conversion_rate"),
        ]


def loyalty_kpis(f: Filters) -> list[Kpi] | None:
    """Loyalty page cards: outstanding points, earned, redeemed, participation over the range."""
    p = _periods_to_compare(f)
    if p is None or (not f.user_filtered and not has("loyalty_daily")):
        return None
    cur, prev, rc, prc = _cur_prev(f, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = cur["participants"] / cur["dau"].where(cur["dau"] > 0)
    return [
        Kpi("outstanding_points", "Outstanding points", _last(cur["outstanding_points"]),
            _pv(prev, _last, "outstanding_points"), cur["outstanding_points"]),
        Kpi("points_earned", "Points earned", _sum(cur["points_earned"]), _pv(prev, _sum, "points_earned"),
            cur["points_earned"]),
        Kpi("points_redeemed", "Points redeemed", _sum(cur["points_redeemed"]), _pv(prev, _sum, "points_redeemed"),
            cur["points_redeemed"]),
        Kpi("participation_rate", LABELS["range_participation_rate"],
            _ratio(rc.get("participants"), rc.get("active")), _ratio(prc.get("participants"), prc.get("active")),
            part, fmt="pct", note=_of_active(rc, "participants", "participant"), info_key="range_participation_rate"),
    ]


def retention_kpis(f: Filters) -> list[Kpi] | None:
    """D1 / D7 / D30 retention of the cohorts in the range, against the previous period's cohorts."""
    p = _periods_to_compare(f)
    if p is None or (not f.demographic and not has("retention_daily")):
        return None
    lo, hi = p[0], p[1]
    out = [retention_kpi(f, n, lo, hi) for n in (1, 7, 30)]
    return None if any(k is None for k in out) else out


def cohort_window(lo: date, hi: date, n: int, first: date, last: date) -> tuple[date, date] | None:
    """The cohorts a Dn card uses: those of [lo, hi] when at least one is n days old by the lake's last
    date; else the latest cohorts that are, over a window as long as the range (None: no cohort is)."""
    newest = last - timedelta(days=n)  # the latest cohort with a day n
    if lo <= newest:
        return lo, min(hi, max(newest, lo))
    if newest < first:
        return None
    return max(first, newest - (hi - lo)), newest


def retention_kpi(f: Filters, n: int, lo: date, hi: date) -> Kpi | None:
    """Dn retention of the range's cohorts, vs the cohorts of the period before. When none of the range's
    cohorts is n days old yet, the latest cohorts that are (as many days as the range) and the card says so."""
    bounds = lake_bounds()
    if bounds is None:
        return None
    win = cohort_window(lo, hi, n, *bounds)
    if win is None:
        cur = d7_retention(f, lo, hi, n)
        return None if cur is None else Kpi(f"d{n}", f"D{n} retention", None, None, cur[1], fmt="pct",
                                            note=f"no cohort is {count(n, 'day')} old yet")
    clo, chi = win
    cur = d7_retention(f, lo, hi, n) if clo == lo else d7_retention(f, clo, chi, n)
    if cur is None:
        return None
    plo, phi = previous_period(lo, hi) if clo == lo else previous_period(clo, chi)
    prev = d7_retention(f, plo, phi, n) if plo >= bounds[0] else None
    note = "" if clo == lo else (f"cohorts {clo:%d %b} – {chi:%d %b %Y}: the range's cohorts are not "
                                 f"{count(n, 'day')} old yet")
    return Kpi(f"d{n}", f"D{n} retention", cur[0], prev[0] if prev else None, cur[1], fmt="pct", note=note)


# --------------------------------------------------------------------------- engagement

def engagement(f: Filters) -> pd.DataFrame | None:
    """Active users per period (day: DAU/WAU/MAU; week/month: distinct users in the period)."""
    rng = resolve(f)
    if rng is None:
        return None
    lo, hi = rng
    if f.grain == "day":
        daily = daily_metrics(f, lo, hi)
        out = daily[["dau", "wau", "mau", "stickiness", "new_users", "new_active_users",
                     "existing_active_users"]].copy()
        out["active"] = out["dau"]
        out["avg_dau"] = out["dau"]
        out["period_end"] = out.index
        out["partial"] = False
        out.index.name = "period"
        with np.errstate(invalid="ignore", divide="ignore"):
            out["new_ratio"] = out["new_active_users"] / out["active"].where(out["active"] > 0)
        return out.reset_index()

    def build():
        act = activity()
        a, b = d2i(lo), d2i(hi)
        codes, starts, ends = _periods(a, b, f.grain)
        k = len(codes)
        out = pd.DataFrame({"period": _ts(starts), "period_end": _ts(ends),
                            "partial": _partial(starts, ends, a, b, f.grain)})
        daily = daily_metrics(f, lo, hi)
        dcode = period_code(np.array([d2i(x.date()) for x in daily.index]), f.grain) - codes[0]
        for col, how in (("avg_dau", "dau"), ("stickiness", "stickiness")):
            s = pd.Series(daily[how].to_numpy(dtype=float)).groupby(dcode).mean()
            out[col] = s.reindex(range(k)).to_numpy()
        nu = pd.Series(daily["new_users"].to_numpy(dtype=float)).groupby(dcode).sum(min_count=1)
        out["new_users"] = nu.reindex(range(k)).to_numpy()
        if act is None:
            for c in ("active", "new_active_users", "existing_active_users", "new_ratio"):
                out[c] = np.nan
            return out
        sel = _row_index(act, f, a, b)
        u, p = act.user[sel], act.period(f.grain)[sel]
        first = distinct_pairs(u, p)
        up, pp = u[first], p[first] - codes[0]
        active = np.bincount(pp, minlength=k)[:k].astype(float)
        new = np.bincount(pp[period_code(act.first_seen[up].clip(0, BIG // 2), f.grain) == pp + codes[0]],
                          minlength=k)[:k].astype(float)
        out["active"] = active
        out["new_active_users"] = new
        out["existing_active_users"] = active - new
        with np.errstate(invalid="ignore", divide="ignore"):
            out["new_ratio"] = np.where(active > 0, new / np.maximum(active, 1), np.nan)
            if f.grain == "month":  # the contract's monthly stickiness: avg DAU / calendar-month MAU
                out["stickiness"] = np.where(active > 0, out["avg_dau"] / np.maximum(active, 1), np.nan)
        return out

    return cached("engagement", (UAD, USERS, ("gold", "engagement_daily")), (f.key(), lo, hi), build)


def lifecycle(f: Filters) -> pd.DataFrame | None:
    """new / returning / resurrecting / dormant per period (gold lifecycle_daily when unfiltered daily)."""
    rng = resolve(f)
    bounds = lake_bounds()
    if rng is None or bounds is None:
        return None
    lo, hi = rng
    a, b = d2i(lo), d2i(hi)
    cols = ["new", "returning", "resurrecting", "dormant"]
    if f.grain == "day" and not f.user_filtered and (lc := gold("lifecycle_daily")) is not None:
        lc = _on_dates(lc, lo, hi)
        out = lc.rename(columns={"activity_date": "period"})[["period"] + cols].copy()
        out["period"] = pd.DatetimeIndex(out["period"])
        out["partial"] = False
        return out.reset_index(drop=True)

    def build():
        act = activity()
        if act is None:
            return None
        codes, starts, ends = _periods(a, b, f.grain)
        k = len(codes)
        c0 = codes[0]
        sel = _row_index(act, f, int(period_start(c0 - 1, f.grain)), b)
        u, p = act.user[sel], act.period(f.grain)[sel]
        first = distinct_pairs(u, p)
        u, p = u[first], p[first]
        same_prev = np.r_[False, u[1:] == u[:-1]]
        prev_p = np.r_[-BIG, p[:-1]]
        had_prev = same_prev & (prev_p == p - 1)
        is_new = period_code(np.minimum(act.first_seen[u], BIG // 2), f.grain) == p
        same_next = np.r_[u[1:] == u[:-1], False]
        next_p = np.r_[p[1:], BIG]
        leaves = ~(same_next & (next_p == p + 1))

        def count(m, shift=0):
            q = p[m] + shift - c0
            q = q[(q >= 0) & (q < k)]
            return np.bincount(q, minlength=k)[:k].astype(float)

        out = pd.DataFrame({"period": _ts(starts), "new": count(is_new), "returning": count(had_prev & ~is_new),
                            "resurrecting": count(~had_prev & ~is_new), "dormant": count(leaves, 1)})
        out["partial"] = _partial(starts, ends, d2i(bounds[0]), b, f.grain)
        first_lake = period_code(d2i(bounds[0]), f.grain)
        out.loc[codes == first_lake, cols] = np.nan
        return out

    return cached("lifecycle", (UAD, USERS, ("gold", "lifecycle_daily")), (f.key(), lo, hi), build)


# --------------------------------------------------------------------------- retention

def retention(f: Filters, cohort: str = "day") -> pd.DataFrame | None:
    """Cohort x N table for cohorts whose start lies in the range.

    Columns: cohort, n, cohort_size, retained, retained_unbounded (daily only), rate, rate_unbounded.
    Computed from users + user_activity_daily under a country/gender/age-group filter (the device
    filter does not apply: a cohort is a set of users, not of days).
    """
    rng = resolve(f)
    bounds = lake_bounds()
    if rng is None or bounds is None:
        return None
    lo, hi = rng
    weekly = cohort == "week"
    name = "retention_weekly" if weekly else "retention_daily"
    key_col = "cohort_week" if weekly else "cohort_date"
    n_col = "week_n" if weekly else "day_n"
    first_cohort = lo - timedelta(days=lo.weekday()) if weekly else lo

    if not f.demographic:
        def build_gold():
            g = gold(name)
            if g is None:
                return None
            g = g[(g[key_col] >= pd.Timestamp(first_cohort)) & (g[key_col] <= pd.Timestamp(hi))]
            g = g[g["cohort_size"] > 0]
            out = pd.DataFrame({"cohort": pd.DatetimeIndex(g[key_col]), "n": g[n_col].astype(int),
                                "cohort_size": g["cohort_size"].astype(float),
                                "retained": g["retained_users"].astype(float)})
            out["retained_unbounded"] = (g["retained_users_unbounded"].astype(float).to_numpy()
                                         if "retained_users_unbounded" in g.columns else np.nan)
            out["rate"] = out["retained"] / out["cohort_size"]
            out["rate_unbounded"] = out["retained_unbounded"] / out["cohort_size"]
            return out.sort_values(["cohort", "n"]).reset_index(drop=True)
        return cached("retention", (("gold", name),), (cohort, lo, hi), build_gold)

    def build():
        act = activity()
        users = users_frame()
        if act is None or users is None:
            return None
        last = d2i(bounds[1])
        um = np.zeros(act.n_users, dtype=bool)
        um[: len(users)] = users_mask(users, f)
        fs = act.first_seen
        if weekly:
            cstart = fs - ((fs + 3) % 7)  # Monday of the first-seen week
        else:
            cstart = fs
        a = d2i(first_cohort)
        member = um & (cstart >= a) & (cstart <= d2i(hi))
        max_n = 12 if weekly else 30
        step = 7 if weekly else 1
        n_coh = (d2i(hi) - a) // step + 1
        ci = (cstart[member] - a) // step
        sizes = np.bincount(ci, minlength=n_coh)[:n_coh].astype(float)
        rows = member[act.user]
        u, d = act.user[rows], act.day[rows].astype(np.int64)
        if weekly:
            n = ((d - ((d + 3) % 7)) - cstart[u]) // 7
            keep = distinct_pairs(u, n) & (n >= 0) & (n <= max_n)
        else:
            n = d - cstart[u]
            keep = (n >= 0) & (n <= max_n)
        cidx = (cstart[u[keep]] - a) // step
        ret = np.bincount(cidx * (max_n + 1) + n[keep], minlength=n_coh * (max_n + 1))
        ret = ret[: n_coh * (max_n + 1)].reshape(n_coh, max_n + 1).astype(float)
        unb = np.full_like(ret, np.nan)
        if not weekly and len(u):
            last_row = np.r_[u[1:] != u[:-1], True]
            lu, ld = u[last_row], d[last_row]
            span = np.minimum(ld - cstart[lu], max_n)
            ok = span >= 0
            diff = np.zeros((n_coh, max_n + 2))
            np.add.at(diff, ((cstart[lu][ok] - a), 0), 1)
            np.add.at(diff, ((cstart[lu][ok] - a), span[ok] + 1), -1)
            unb = np.cumsum(diff, axis=1)[:, : max_n + 1]
        cc, kk = np.meshgrid(np.arange(n_coh), np.arange(max_n + 1), indexing="ij")
        cday = a + cc * step
        ok = (sizes[cc] > 0) & (cday + kk * step <= last)
        out = pd.DataFrame({"cohort": _ts(cday[ok]), "n": kk[ok].astype(int), "cohort_size": sizes[cc[ok]],
                            "retained": ret[ok], "retained_unbounded": unb[ok]})
        out["rate"] = out["retained"] / out["cohort_size"]
        out["rate_unbounded"] = out["retained_unbounded"] / out["cohort_size"]
        return out

    return cached("retention", (UAD, USERS), (cohort, f.country, f.gender, f.age_group, lo, hi), build)


def retention_curve(table: pd.DataFrame | None, unbounded: bool = False) -> pd.DataFrame | None:
    """Average retention by N: sum of retained over sum of sizes of cohorts that have that N."""
    if table is None:
        return None
    col = "retained_unbounded" if unbounded else "retained"
    g = table.groupby("n").agg(retained=(col, "sum"), cohort_size=("cohort_size", "sum"),
                               cohorts=("cohort", "nunique"))
    g["rate"] = g["retained"] / g["cohort_size"].where(g["cohort_size"] > 0)
    return g.reset_index()


def d7_retention(f: Filters, lo: date, hi: date, n: int = 7) -> tuple[float | None, pd.Series] | None:
    """Share of the cohorts of [lo, hi] retained exactly n days later, and its value per cohort."""
    table = retention(f.with_dates(lo, hi), "day")
    if table is None:
        return None
    t = table[table["n"] == n]
    spark = pd.Series(t["rate"].to_numpy(), index=pd.DatetimeIndex(t["cohort"]))
    size = t["cohort_size"].sum()
    return (float(t["retained"].sum() / size) if size else None), spark


# --------------------------------------------------------------------------- demographics

def demographics(f: Filters) -> pd.DataFrame | None:
    """Users, active users and new users by gender x age group x country.

    Without filters and with the last-30-days range this is gold.demographics; otherwise users come
    from gold.users (country/gender/age filters) and active users are the distinct users active in
    the range (all filters, incl. device).
    """
    rng = resolve(f)
    bounds = lake_bounds()
    if rng is None or bounds is None:
        return None
    lo, hi = rng
    dims = ["gender", "age_group", "country"]
    last30 = (hi == bounds[1]) and (lo == max(bounds[0], bounds[1] - timedelta(days=29)))
    if not f.user_filtered and last30 and (g := gold("demographics")) is not None:
        return g.rename(columns={"active_users_30d": "active_users", "new_users_30d": "new_users"})[
            dims + ["users", "active_users", "new_users"]]

    def build():
        users = users_frame()
        ui = user_index()
        act = activity()
        if users is None or ui is None:
            return None
        um = users_mask(users, f)
        g, a, c = (ui.codes[d] for d in USER_DIMS)
        na, nc = len(ui.cats["age_group"]), len(ui.cats["country"])
        size = len(ui.cats["gender"]) * na * nc
        combo = (g.astype(np.int64) * na + a) * nc + c
        new = um & (ui.first_seen >= d2i(lo)) & (ui.first_seen <= d2i(hi))
        active = np.zeros(len(users), dtype=bool)
        if act is not None:
            rows = _row_index(act, f, d2i(lo), d2i(hi))
            au = act.user[rows]
            active[au[au < len(users)]] = True
            active &= um
        counts = {name: np.bincount(combo[m], minlength=size) for name, m in
                  (("users", um), ("active_users", active), ("new_users", new))}
        keep = np.flatnonzero(counts["users"])
        gi, rest = np.divmod(keep, na * nc)
        ai, ci = np.divmod(rest, nc)
        return pd.DataFrame({
            "gender": np.array(ui.cats["gender"], dtype=object)[gi],
            "age_group": np.array(ui.cats["age_group"], dtype=object)[ai],
            "country": np.array(ui.cats["country"], dtype=object)[ci],
            **{name: v[keep].astype(np.int64) for name, v in counts.items()}})

    return cached("demographics", (UAD, USERS), (f.key(), lo, hi), build)


# --------------------------------------------------------------------------- loyalty

def loyalty(f: Filters) -> pd.DataFrame | None:
    """Points earned/redeemed, participation and outstanding balance per period."""
    rng = resolve(f)
    if rng is None:
        return None
    lo, hi = rng
    if not f.user_filtered and not has("loyalty_daily"):
        return None
    daily = daily_metrics(f, lo, hi)
    cols = ["points_earned", "points_redeemed", "earners", "redeemers", "participants", "outstanding_points",
            "dau"]
    if f.grain == "day":
        out = daily[cols].copy()
        out["active"] = out["dau"]
        out.index.name = "period"
        out = out.reset_index()
        out["partial"] = False
    else:
        def build():
            act = activity()
            a, b = d2i(lo), d2i(hi)
            codes, starts, ends = _periods(a, b, f.grain)
            k = len(codes)
            dcode = period_code(np.array([d2i(x.date()) for x in daily.index]), f.grain) - codes[0]
            g = pd.DataFrame(daily[cols].to_numpy(dtype=float), columns=cols).groupby(dcode)
            res = pd.DataFrame({"period": _ts(starts), "partial": _partial(starts, ends, a, b, f.grain)})
            for c in ("points_earned", "points_redeemed"):
                res[c] = g[c].sum().reindex(range(k)).to_numpy()
            res["outstanding_points"] = g["outstanding_points"].last().reindex(range(k)).to_numpy()
            # distinct participants / active users of the period
            if act is not None:
                sel = _row_index(act, f, a, b)
                u, p = act.user[sel], act.period(f.grain)[sel]
                part = (act.num["points_earned"][sel] > 0) | (act.num["points_redeemed"][sel] > 0)
                first = distinct_pairs(u, p)
                res["active"] = np.bincount(p[first] - codes[0], minlength=k)[:k].astype(float)
                up, pp = u[part], p[part]
                fp = distinct_pairs(up, pp)
                res["participants"] = np.bincount(pp[fp] - codes[0], minlength=k)[:k].astype(float)
            else:
                res["active"] = np.nan
                res["participants"] = np.nan
            return res
        out = cached("loyalty", (UAD, USERS, ("gold", "loyalty_daily")), (f.key(), lo, hi), build)
    out = out.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["participation_rate"] = out["participants"] / out["active"].where(out["active"] > 0)
    return out


def balances(f: Filters) -> pd.DataFrame | None:
    """loyalty_balances with user attributes, restricted to users matching the demographic filter."""
    lb = gold("loyalty_balances")
    if lb is None:
        return None

    def build():
        users = users_frame()
        out = lb
        if users is not None:
            attrs = [c for c in ("user_id", "country", "gender", "age_group", "segment") if c in users.columns]
            sub = users.loc[users_mask(users, f), attrs] if f.demographic else users[attrs]
            how = "inner" if f.demographic else "left"
            out = lb.merge(sub, on="user_id", how=how)
        return out.sort_values("balance", ascending=False).reset_index(drop=True)
    return cached("balances", (("gold", "loyalty_balances"), USERS), (f.country, f.gender, f.age_group), build)


# --------------------------------------------------------------------------- revenue

def reporting_currency() -> str:
    """The currency of gold's money (the `reporting_currency` column of gold.revenue_daily, one value);
    '' for a lake built before gold named it."""
    def build():
        t = read_arrow("gold", "revenue_daily")
        if t is None or "reporting_currency" not in t.column_names or not t.num_rows:
            return ""
        return str(t.column("reporting_currency")[0].as_py() or "")
    return derived("reporting_currency", (("gold", "revenue_daily"),), build)


def money_label(label: str) -> str:
    """`label` with the reporting currency, e.g. 'Revenue (USD)'."""
    cur = reporting_currency()
    return f"{label} ({cur})" if cur else label


def revenue_by_currency(f: Filters) -> pd.DataFrame | None:
    """Successful purchases in the range per currency as sent (gold.revenue_by_currency_daily): orders,
    the original amounts (in that currency), revenue in the reporting currency and its share, and
    whether the currency was converted on every day (False: some or all orders had no rate)."""
    rng = resolve(f)
    t = gold("revenue_by_currency_daily")
    if rng is None or t is None:
        return None
    lo, hi = rng
    d = _on_dates(t, lo, hi)
    g = d.groupby("currency", as_index=False).agg(
        orders=("orders", "sum"), amount=("amount", "sum"), revenue=("revenue", lambda v: v.sum(min_count=1)),
        converted=("converted", "all"),
        unconverted_orders=("orders", lambda v: int(v[~d.loc[v.index, "converted"]].sum())))
    total = g["revenue"].sum()
    g["share"] = g["revenue"] / total if total else np.nan
    return g.sort_values(["revenue", "orders"], ascending=False, na_position="last").reset_index(drop=True)


def unconverted_orders() -> pd.DataFrame | None:
    """Orders left out of revenue because their currency had no rate, per date and currency
    (gold.revenue_by_currency_daily where converted is false), latest first; None without the table."""
    t = gold("revenue_by_currency_daily")
    if t is None:
        return None
    u = t[~t["converted"].astype(bool)][["activity_date", "currency", "orders", "amount"]]
    return u.sort_values(["activity_date", "currency"], ascending=[False, True]).reset_index(drop=True)


def revenue(f: Filters) -> pd.DataFrame | None:
    """orders, revenue, buyers, active users, conversion, ARPU, ARPPU (+ failed payments) per period."""
    rng = resolve(f)
    if rng is None:
        return None
    lo, hi = rng
    if not f.user_filtered and not has("revenue_daily") and not has("user_activity_daily"):
        return None
    daily = daily_metrics(f, lo, hi)
    if f.grain == "day":
        out = daily[["orders", "revenue", "buyers", "failed_payments", "dau"]].copy()
        out = out.rename(columns={"dau": "active"})
        out.index.name = "period"
        out = out.reset_index()
        out["partial"] = False
    else:
        def build():
            act = activity()
            a, b = d2i(lo), d2i(hi)
            codes, starts, ends = _periods(a, b, f.grain)
            k = len(codes)
            dcode = period_code(np.array([d2i(x.date()) for x in daily.index]), f.grain) - codes[0]
            g = pd.DataFrame(daily[["orders", "revenue", "failed_payments"]].to_numpy(dtype=float),
                             columns=["orders", "revenue", "failed_payments"]).groupby(dcode)
            res = pd.DataFrame({"period": _ts(starts), "partial": _partial(starts, ends, a, b, f.grain)})
            for c in ("orders", "revenue", "failed_payments"):
                res[c] = g[c].sum(min_count=1).reindex(range(k)).to_numpy()
            if act is not None:
                sel = _row_index(act, f, a, b)
                u, p = act.user[sel], act.period(f.grain)[sel]
                first = distinct_pairs(u, p)
                res["active"] = np.bincount(p[first] - codes[0], minlength=k)[:k].astype(float)
                buy = act.num["purchases"][sel] > 0
                bu, bp = u[buy], p[buy]
                fb = distinct_pairs(bu, bp)
                res["buyers"] = np.bincount(bp[fb] - codes[0], minlength=k)[:k].astype(float)
            else:
                res["active"] = np.nan
                res["buyers"] = np.nan
            return res
        out = cached("revenue", (UAD, USERS, ("gold", "revenue_daily")), (f.key(), lo, hi), build)
    out = out.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["conversion_rate"] = out["buyers"] / out["active"].where(out["active"] > 0)
        out["arpu"] = out["revenue"] / out["active"].where(out["active"] > 0)
        out["arppu"] = out["revenue"] / out["buyers"].where(out["buyers"] > 0)
    return out


def conversion_by_device(f: Filters) -> pd.DataFrame | None:
    """Per period and device: active users, buyers and buyers / active (device of the user-day)."""
    rng = resolve(f)
    act = activity()
    if rng is None or act is None:
        return None
    lo, hi = rng

    def build():
        a, b = d2i(lo), d2i(hi)
        codes, starts, ends = _periods(a, b, f.grain)
        k = len(codes)
        sel = _row_index(act, f, a, b)
        u, p, dev = act.user[sel], act.period(f.grain)[sel], act.codes["device"][sel]
        buy = act.num["purchases"][sel] > 0
        frames = []
        for j, name in enumerate(act.cats["device"]):
            m = dev == j
            if not m.any():
                continue
            du, dp = u[m], p[m]
            fa = distinct_pairs(du, dp)
            active = np.bincount(dp[fa] - codes[0], minlength=k)[:k].astype(float)
            bm = buy[m]
            fb = distinct_pairs(du[bm], dp[bm])
            buyers = np.bincount(dp[bm][fb] - codes[0], minlength=k)[:k].astype(float)
            frames.append(pd.DataFrame({"period": _ts(starts), "device": name, "active": active, "buyers": buyers,
                                        "partial": _partial(starts, ends, a, b, f.grain)}))
        if not frames:
            return pd.DataFrame(columns=["period", "device", "active", "buyers", "partial", "conversion_rate"])
        out = pd.concat(frames, ignore_index=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["conversion_rate"] = out["buyers"] / out["active"].where(out["active"] > 0)
        return out
    return cached("conv_device", (UAD, USERS), (f.key(), lo, hi), build)


def pareto(f: Filters) -> pd.DataFrame | None:
    """Paying users ranked by revenue in the range with cumulative shares of users and revenue."""
    rng = resolve(f)
    bounds = lake_bounds()
    if rng is None or bounds is None:
        return None
    lo, hi = rng
    act = activity()

    def build():
        if act is not None:
            sel = _row_index(act, f, d2i(lo), d2i(hi))
            rev = np.bincount(act.user[sel], weights=act.num["revenue"][sel], minlength=act.n_users)
            ids = act.user_ids
        else:
            ur = gold("user_revenue")
            if ur is None:
                return None
            rev, ids = ur["revenue"].to_numpy(dtype=float), ur["user_id"].to_numpy(dtype=object)
        pos = rev > 0
        r = rev[pos]
        order = np.argsort(-r, kind="stable")
        r, ids = r[order], ids[pos][order]
        n = len(r)
        total = r.sum()
        return pd.DataFrame({"rank": np.arange(1, n + 1), "user_id": ids, "revenue": r,
                             "user_share": np.arange(1, n + 1) / max(n, 1),
                             "revenue_share": np.cumsum(r) / total if total else np.zeros(n)})
    return cached("pareto", (UAD, USERS, ("gold", "user_revenue")), (_ufilter_key(f), lo, hi), build)


def buyers_in_range(f: Filters) -> int | None:
    """Distinct buyers (a successful purchase, whatever its amount) in the selected range."""
    rng = resolve(f)
    rc = range_counts(f, *rng) if rng is not None else None
    return None if rc is None else rc["buyers"]


def top_shares(p: pd.DataFrame | None, tops=(0.01, 0.1, 0.2)) -> dict[float, float | None]:
    """Share of revenue from the top x of paying users (at least one user)."""
    out: dict[float, float | None] = {}
    for t in tops:
        if p is None or not len(p):
            out[t] = None
            continue
        k = max(1, int(np.ceil(t * len(p))))
        out[t] = float(p["revenue_share"].iloc[k - 1])
    return out


# --------------------------------------------------------------------------- funnel

def _window_complete(df: pd.DataFrame) -> pd.Series:
    """is_window_complete of funnel rows (all true for a gold written before the column existed)."""
    if "is_window_complete" not in df:
        return pd.Series(True, index=df.index)
    return df["is_window_complete"].fillna(True).astype(bool)


def _funnel_table_rows(name: str, f: Filters) -> pd.DataFrame | None:
    """A funnel gold table's rows in the range and for the selected devices (None: no such rows)."""
    rng = resolve(f)
    table = gold(name)
    if rng is None or table is None:
        return None
    rows = _on_dates(table, *rng)
    if f.device:
        rows = rows[rows["device"].fillna("unknown").isin(f.device)]
    return rows


def funnel_rows(f: Filters) -> pd.DataFrame | None:
    """funnel_daily rows in the range and for the selected devices."""
    return _funnel_table_rows("funnel_daily", f)


def funnel_entry_rows(f: Filters) -> pd.DataFrame | None:
    """gold.funnel_entries (one row per entry) in the range and for the selected devices."""
    return _funnel_table_rows("funnel_entries", f)


def funnel_distinct_users(f: Filters, n_steps: int) -> np.ndarray:
    """Distinct users reaching steps 1..n_steps over the range (metrics.md, Funnel: a user counts at
    step k when one of their entries in the range reached it); NaN without gold.funnel_entries."""
    rows = funnel_entry_rows(f)
    if rows is None:
        return np.full(n_steps, np.nan)
    best = rows.groupby("user_id")["reached"].max().to_numpy()
    return np.array([float((best >= k).sum()) for k in range(1, n_steps + 1)])


def funnel_steps(f: Filters) -> pd.DataFrame | None:
    """Entries (user-days) per step summed over the range, with step-to-step and overall conversion and
    drop-off; `distinct_users` reaching each step and their conversion from the first step;
    `open_entries`, the entries whose window is not yet closed."""
    rows = funnel_rows(f)
    if rows is None:
        return None
    rows = rows.assign(_open=np.where(_window_complete(rows), 0, rows["users"]))
    g = (rows.groupby(["step_index", "step_name"], as_index=False)
         .agg(users=("users", "sum"), open_entries=("_open", "sum")).sort_values("step_index"))
    g["users"] = g["users"].astype(float)
    g["open_entries"] = g["open_entries"].astype(float)
    first = g["users"].iloc[0] if len(g) else np.nan
    prev = g["users"].shift(1)
    g["step_conversion"] = g["users"] / prev.where(prev > 0)
    g["overall_conversion"] = g["users"] / first if first else np.nan
    g["drop_off"] = (prev - g["users"]).fillna(0)
    g["distinct_users"] = funnel_distinct_users(f, len(g)) if len(g) else np.array([], float)
    first_users = g["distinct_users"].iloc[0] if len(g) else np.nan
    g["user_conversion"] = g["distinct_users"] / first_users if first_users and np.isfinite(first_users) else np.nan
    return g.reset_index(drop=True)


def funnel_by_device(f: Filters) -> pd.DataFrame | None:
    """Users per step and device summed over the range, with conversion from the first step."""
    rows = funnel_rows(f)
    if rows is None:
        return None
    g = rows.assign(device=rows["device"].fillna("unknown")).groupby(
        ["device", "step_index", "step_name"], as_index=False)["users"].sum()
    first = g[g["step_index"] == g["step_index"].min()].set_index("device")["users"]
    g["overall_conversion"] = g["users"] / g["device"].map(first).where(g["device"].map(first) > 0)
    return g.sort_values(["device", "step_index"]).reset_index(drop=True)


def funnel_over_time(f: Filters, include_open: bool = False) -> pd.DataFrame | None:
    """Entries, completions and their ratio (overall conversion) per period.

    Entries whose window is not yet closed (`is_window_complete` false) are left out unless
    `include_open`; `open_entries` counts them either way, and `window_open` marks the periods whose
    rate includes some of them (only with `include_open`).
    """
    rows = funnel_rows(f)
    rng = resolve(f)
    if rows is None or rng is None:
        return None
    lo, hi = rng
    a, b = d2i(lo), d2i(hi)
    codes, starts, ends = _periods(a, b, f.grain)
    k = len(codes)
    first_step, last_step = (rows["step_index"].min(), rows["step_index"].max()) if len(rows) else (0, 0)
    days = (rows["activity_date"].to_numpy().astype("datetime64[D]").astype(np.int64))
    pc_ = period_code(days, f.grain) - codes[0]
    users = rows["users"].to_numpy(dtype=float)
    step = rows["step_index"].to_numpy()
    is_open = ~_window_complete(rows).to_numpy()
    counted = np.ones(len(rows), bool) if include_open else ~is_open

    def per_period(m):
        return np.bincount(pc_[m], users[m], minlength=k)[:k]

    entries = per_period((step == first_step) & counted)
    done = per_period((step == last_step) & counted)
    open_entries = per_period((step == first_step) & is_open)
    out = pd.DataFrame({"period": _ts(starts), "entries": entries, "completions": done,
                        "open_entries": open_entries, "window_open": (open_entries > 0) & include_open,
                        "partial": _partial(starts, ends, a, b, f.grain)})
    out["conversion_rate"] = out["completions"] / out["entries"].where(out["entries"] > 0)
    return out


# --------------------------------------------------------------------------- sessions and content

def sessions(f: Filters) -> pd.DataFrame | None:
    """Sessions, active users, average session length and daily time per active user per period."""
    rng = resolve(f)
    if rng is None:
        return None
    lo, hi = rng
    a, b = d2i(lo), d2i(hi)
    codes, starts, ends = _periods(a, b, f.grain)
    k = len(codes)
    base = pd.DataFrame({"period": _ts(starts), "partial": _partial(starts, ends, a, b, f.grain)})
    if f.user_filtered:
        daily = daily_metrics(f, lo, hi)
        if daily["dau"].isna().all():
            return None
        dcode = period_code(np.array([d2i(x.date()) for x in daily.index]), f.grain) - codes[0]
        g = pd.DataFrame({"sessions": daily["sessions"].to_numpy(float), "users": daily["dau"].to_numpy(float)}
                         ).groupby(dcode).sum()
        base["sessions"] = g["sessions"].reindex(range(k)).to_numpy()
        base["user_days"] = g["users"].reindex(range(k)).to_numpy()
        base["total_session_seconds"] = np.nan
    else:
        sd = gold("sessions_daily")
        if sd is None:
            return None
        sd = _on_dates(sd, lo, hi)
        dcode = period_code(sd["activity_date"].to_numpy().astype("datetime64[D]").astype(np.int64),
                            f.grain) - codes[0]
        g = sd[["sessions", "users", "total_session_seconds"]].astype(float).groupby(dcode).sum()
        base["sessions"] = g["sessions"].reindex(range(k)).to_numpy()
        base["user_days"] = g["users"].reindex(range(k)).to_numpy()
        base["total_session_seconds"] = g["total_session_seconds"].reindex(range(k)).to_numpy()
    ndays = (np.minimum(ends, b) - np.maximum(starts, a) + 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        base["sessions_per_day"] = base["sessions"] / ndays
        base["avg_session_seconds"] = base["total_session_seconds"] / base["sessions"].where(base["sessions"] > 0)
        base["avg_time_per_user_seconds"] = base["total_session_seconds"] / base["user_days"].where(
            base["user_days"] > 0)
        base["sessions_per_user"] = base["sessions"] / base["user_days"].where(base["user_days"] > 0)
    return base


def _top(name: str, key: str, value: str, f: Filters, n: int) -> pd.DataFrame | None:
    rng = resolve(f)
    t = gold(name)
    if rng is None or t is None:
        return None
    lo, hi = rng
    t = _on_dates(t, lo, hi)
    g = t.groupby(key, as_index=False)[[value, "users"]].sum().sort_values(value, ascending=False)
    return g.head(n).reset_index(drop=True)


def top_events(f: Filters, n: int = 15) -> pd.DataFrame | None:
    """Most frequent events in the range (event_counts_daily)."""
    return _top("event_counts_daily", "event", "events", f, n)


def top_pages(f: Filters, n: int = 15) -> pd.DataFrame | None:
    """Most viewed pages in the range (page_views_daily)."""
    return _top("page_views_daily", "page", "views", f, n)


def hourly(event: str) -> pd.DataFrame | None:
    """A 7 x 24 grid (day_of_week 1..7 x hour 0..23) of an event's counts, zero-filled."""
    h = gold("hourly_activity")
    if h is None:
        return None
    h = h[h["event"] == event]
    grid = pd.DataFrame({"day_of_week": np.repeat(np.arange(1, 8), 24), "hour": np.tile(np.arange(24), 7)})
    g = h.groupby(["day_of_week", "hour"], as_index=False)["events"].sum()
    out = grid.merge(g, on=["day_of_week", "hour"], how="left").fillna({"events": 0})
    return out


def quizzes(f: Filters) -> pd.DataFrame | None:
    """Per quiz over the range: attempts, participants (summed over days), passes, pass rate."""
    rng = resolve(f)
    q = gold("quiz_daily")
    if rng is None or q is None:
        return None
    lo, hi = rng
    q = _on_dates(q, lo, hi)
    g = q.groupby("quiz_id", as_index=False)[["attempts", "participants", "passes"]].sum()
    g["pass_rate"] = g["passes"] / g["attempts"].where(g["attempts"] > 0)
    return g.sort_values("quiz_id").reset_index(drop=True)


def courses() -> pd.DataFrame | None:
    """course_progress as is, by completion rate."""
    c = gold("course_progress")
    return None if c is None else c.sort_values("completion_rate", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------- segments and clusters

def segments(f: Filters) -> pd.DataFrame | None:
    """segment_summary, or the same figures from gold.users under a demographic filter."""
    if not f.demographic:
        s = gold("segment_summary")
        if s is not None:
            return s.sort_values("users", ascending=False).reset_index(drop=True)
    users = users_frame()
    if users is None or "segment" not in users.columns:
        return None
    u = users[users_mask(users, f)]
    g = u.groupby("segment", as_index=False).agg(users=("user_id", "size"), avg_revenue=("revenue", "mean"),
                                                 avg_active_days=("active_days", "mean"))
    g["share"] = g["users"] / max(len(u), 1)
    return g.sort_values("users", ascending=False).reset_index(drop=True)


def segment_profiles(f: Filters) -> pd.DataFrame | None:
    """Per segment: users and averages of behaviour and age from gold.users (demographic filter)."""
    users = users_frame()
    if users is None or "segment" not in users.columns:
        return None
    u = users[users_mask(users, f)]
    aggs = {"users": ("user_id", "size")}
    for c in ("age", "active_days", "events", "orders", "revenue", "points_balance"):
        if c in u.columns:
            aggs[f"avg_{c}"] = (c, "mean")
    return u.groupby("segment", as_index=False).agg(**aggs).sort_values("users", ascending=False)


def segment_trend(f: Filters) -> pd.DataFrame | None:
    """Distinct active users per period and (current) segment."""
    rng = resolve(f)
    act = activity()
    users = users_frame()
    if rng is None or act is None or users is None or "segment" not in users.columns:
        return None
    lo, hi = rng

    def build():
        a, b = d2i(lo), d2i(hi)
        codes, starts, ends = _periods(a, b, f.grain)
        k = len(codes)
        seg_names, seg_codes = np.unique(users["segment"].fillna("unknown").to_numpy(dtype=object),
                                         return_inverse=True)
        seg_of = np.full(act.n_users, len(seg_names), dtype=np.int64)
        seg_of[: len(users)] = seg_codes
        sel = _row_index(act, f, a, b)
        u, p = act.user[sel], act.period(f.grain)[sel]
        first = distinct_pairs(u, p)
        s, q = seg_of[u[first]], p[first] - codes[0]
        grid = np.bincount(s * k + q, minlength=(len(seg_names) + 1) * k).reshape(-1, k)
        frames = [pd.DataFrame({"period": _ts(starts), "segment": name, "active": grid[i].astype(float),
                                "partial": _partial(starts, ends, a, b, f.grain)})
                  for i, name in enumerate(seg_names)]
        return pd.concat(frames, ignore_index=True) if frames else None
    return cached("segment_trend", (UAD, USERS), (f.key(), lo, hi), build)


def clusters(f: Filters) -> pd.DataFrame | None:
    """cluster_profiles (users/share recomputed from gold.users under a demographic filter)."""
    cp = gold("cluster_profiles")
    users = users_frame()
    if cp is None:
        if users is None or "cluster" not in users.columns:
            return None
        cp = users.groupby("cluster", as_index=False).agg(users=("user_id", "size"))
        cp["label"] = "cluster " + cp["cluster"].astype(str)
        cp["share"] = cp["users"] / cp["users"].sum()
    if f.demographic and users is not None and "cluster" in users.columns:
        u = users[users_mask(users, f)]
        counts = u.groupby("cluster").size()
        cp = cp.copy()
        cp["users"] = cp["cluster"].map(counts).fillna(0).astype(int)
        cp["share"] = cp["users"] / max(len(u), 1)
    return cp.sort_values("cluster").reset_index(drop=True)


def cluster_points(f: Filters, max_points: int = 800) -> pd.DataFrame | None:
    """Users on the two principal axes (cluster_pc1, cluster_pc2), a deterministic sample at most."""
    users = users_frame()
    if users is None or not {"cluster_pc1", "cluster_pc2", "cluster"} <= set(users.columns):
        return None
    u = users[users_mask(users, f)]
    u = u[u["cluster_pc1"].notna() & u["cluster_pc2"].notna()]
    if len(u) > max_points:
        u = u.sample(max_points, random_state=0)
    cp = gold("cluster_profiles")
    labels = dict(zip(cp["cluster"], cp["label"])) if cp is not None and "label" in cp.columns else {}
    out = u[["user_id", "cluster", "cluster_pc1", "cluster_pc2"] + [c for c in ("segment",) if c in u.columns]]
    out = out.assign(label=[labels.get(c, f"cluster {c}") for c in out["cluster"]])
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- users page

# the key columns first, so they are in view without scrolling sideways
USER_TABLE_COLUMNS = ("user_id", "segment", "active_days", "events", "orders", "revenue", "points_balance",
                      "last_active_date", "first_seen_date", "country", "age_group", "gender", "signup_channel",
                      "cluster", "age")


def active_user_ids(f: Filters) -> np.ndarray | None:
    """Ids of the users active in f's date range (under its filters); None when no day of the lake is in it."""
    rng = resolve(f)
    act = activity()
    if rng is None or act is None:
        return None
    sel = _row_index(act, f, d2i(rng[0]), d2i(rng[1]))
    return act.user_ids[np.unique(act.user[sel])]


def users_page(f: Filters, search: str = "", segment: str | None = None, cluster: str | int | None = None,
               sort_by: list[dict] | None = None, page: int = 0, page_size: int = 20, active_only: bool = False
               ) -> tuple[pd.DataFrame, int] | None:
    """One page of gold.users: demographic filters, text search, segment/cluster, sorting; with active_only,
    only the users active in f's date range."""
    users = users_frame()
    if users is None:
        return None
    sort_key = tuple((s.get("column_id"), s.get("direction")) for s in (sort_by or []))
    rng = resolve(f) if active_only else None

    def build():
        m = users_mask(users, f)
        if active_only:
            ids = active_user_ids(f)
            m &= users["user_id"].isin(ids if ids is not None else []).to_numpy()
        if segment:
            m &= (users["segment"] == segment).to_numpy() if "segment" in users.columns else False
        if cluster not in (None, ""):
            try:
                m &= (users["cluster"] == int(cluster)).to_numpy() if "cluster" in users.columns else False
            except ValueError:
                m &= False
        if search:
            s = search.strip().lower()
            hit = np.zeros(len(users), dtype=bool)
            for c in ("user_id", "country", "segment", "signup_channel", "gender", "age_group"):
                if c in users.columns:
                    hit |= users[c].fillna("").astype(str).str.lower().str.contains(s, regex=False).to_numpy()
            m &= hit
        out = users.loc[m, [c for c in USER_TABLE_COLUMNS if c in users.columns]]
        if sort_key:
            cols = [c for c, _ in sort_key if c in out.columns]
            asc = [d == "asc" for c, d in sort_key if c in out.columns]
            if cols:
                out = out.sort_values(cols, ascending=asc, na_position="last", kind="stable")
        return out
    rows = cached("users_page", (USERS, UAD), (f.country, f.gender, f.age_group, search, segment, str(cluster),
                                               sort_key, active_only, rng), build)
    start = max(page, 0) * page_size
    return rows.iloc[start: start + page_size], len(rows)


def users_export(f: Filters, search: str = "", segment=None, cluster=None, sort_by=None,
                 active_only: bool = False) -> pd.DataFrame | None:
    """The whole filtered users list (for the CSV download)."""
    res = users_page(f, search, segment, cluster, sort_by, 0, 10 ** 9, active_only)
    return None if res is None else res[0]


def user_profile(user_id: str) -> dict | None:
    """One user's attributes from gold.users (None when unknown); never an email."""
    users = users_frame()
    if users is None or not user_id:
        return None
    row = users[users["user_id"] == user_id]
    if not len(row):
        return None
    rec = row.iloc[0].to_dict()
    lb = gold("loyalty_balances")
    if lb is not None:
        b = lb[lb["user_id"] == user_id]
        if len(b):
            rec["loyalty_earned"] = b["points_earned"].iloc[0]
            rec["loyalty_redeemed"] = b["points_redeemed"].iloc[0]
    return rec


def user_activity(user_id: str, lo: date | None = None, hi: date | None = None) -> pd.DataFrame | None:
    """A user's rows of user_activity_daily (optionally within [lo, hi])."""
    act = activity()
    if act is None or not user_id:
        return None
    hits = np.flatnonzero(act.user_ids == user_id)
    cols = ["date", "events", "sessions", "purchases", "revenue", "points_earned", "points_redeemed", "device"]
    if not len(hits):
        return pd.DataFrame(columns=cols)
    c = hits[0]
    s, e = act.starts[c], act.starts[c + 1]
    day = act.day[s:e]
    keep = np.ones(len(day), dtype=bool)
    if lo is not None:
        keep &= day >= d2i(lo)
    if hi is not None:
        keep &= day <= d2i(hi)
    sl = np.arange(s, e)[keep]
    out = pd.DataFrame({"date": _ts(act.day[sl])})
    for col in NUMERIC:
        out[col] = act.num[col][sl]
    out["device"] = np.array(act.cats["device"], dtype=object)[act.codes["device"][sl]] if len(sl) else []
    return out[cols]


# --------------------------------------------------------------------------- filter options

def filter_options() -> dict[str, list[str]]:
    """Values offered by the filter bar's dropdowns (from user_activity_daily and users)."""
    def build():
        out: dict[str, set] = {d: set() for d in DIMENSIONS}
        act = activity()
        if act is not None:
            for d in DIMENSIONS:
                out[d].update(act.cats[d])
        users = users_frame()
        if users is not None:
            for d in ("country", "gender", "age_group"):
                if d in users.columns:
                    out[d].update(users[d].fillna("unknown").astype(str).unique())
        age_order = ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"]
        res = {d: sorted(v) for d, v in out.items()}
        res["age_group"] = [a for a in age_order if a in out["age_group"]] + sorted(
            out["age_group"] - set(age_order))
        return res
    return derived("filter_options", (UAD, USERS), build)


# --------------------------------------------------------------------------- pipeline health

def list_tables() -> list[tuple[str, str]]:
    """Every Delta table under the lake's layer folders."""
    lake = CONFIG.require_lake()
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


def _table_details(layer: str, name: str, version: int) -> dict:
    """Commit time, row count (from the log's add actions: no data read), files and bytes; kept per version."""
    key = (str(table_path(layer, name)), version)
    if key in _details:
        return _details[key]

    def build():
        dt = DeltaTable(str(table_path(layer, name)), version=version)
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


def table_health() -> pd.DataFrame:
    """Per table: layer, name, version, last update (UTC), rows, files, bytes; missing gold tables listed."""
    recs = []
    present = set()
    versions = [(layer, name, table_version(layer, name)) for layer, name in list_tables()]
    cold = [(layer, name, v) for layer, name, v in versions
            if v is not None and (str(table_path(layer, name)), v) not in _details]
    if len(cold) > 1:  # after a pipeline run many logs changed: read them in parallel (delta-rs frees the GIL)
        from concurrent.futures import ThreadPoolExecutor

        def _prefetch(item):
            try:
                _table_details(*item)
            except Exception:  # noqa: BLE001 - reported per table below
                pass

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(_prefetch, cold))
    for layer, name, v in versions:
        if v is None:
            continue
        present.add((layer, name))
        try:
            det = _table_details(layer, name, v)
            status = "ok"
        except Exception as exc:  # noqa: BLE001
            det, status = {"updated_at": None, "rows": None, "files": None, "size_bytes": None}, f"error: {exc}"
        recs.append({"layer": layer, "table": name, "version": v, **det, "status": status})
    for name in GOLD_TABLES:
        if ("gold", name) not in present:
            recs.append({"layer": "gold", "table": name, "version": None, "updated_at": None, "rows": None,
                         "files": None, "size_bytes": None, "status": "missing"})
    return pd.DataFrame(recs, columns=["layer", "table", "version", "updated_at", "rows", "files", "size_bytes",
                                       "status"])


def quarantine() -> pd.DataFrame | None:
    """gold.quarantine_summary (lines by feed and reason)."""
    q = gold("quarantine_summary")
    return None if q is None else q.sort_values("lines", ascending=False).reset_index(drop=True)


def pipeline_runs() -> pd.DataFrame | None:
    """ops.pipeline_runs, latest first."""
    r = frame("ops", "pipeline_runs")
    if r is None:
        return None
    return r.sort_values("started_at", ascending=False, na_position="last").reset_index(drop=True)


def last_run() -> dict | None:
    """The latest pipeline run as a dict (None when there is none)."""
    r = pipeline_runs()
    if r is None or not len(r):
        return None
    return r.iloc[0].to_dict()


def run_durations(run: dict | None) -> pd.DataFrame | None:
    """Seconds per step of a run, from its durations_json (the layers: the per-table `gold.<table>`
    entries break a layer down and are left out)."""
    if not run or not run.get("durations_json"):
        return None
    try:
        d = json.loads(run["durations_json"])
    except (TypeError, ValueError):
        return None
    if not isinstance(d, dict):
        return None
    d = {k: v for k, v in d.items() if "." not in str(k)}
    return pd.DataFrame({"step": list(d.keys()), "seconds": [float(v) for v in d.values()]})


def erasures(now: datetime | None = None) -> pd.DataFrame | None:
    """ops.erasures, one row per forget (latest first): when requested, how many user ids, its
    status, and the replaced data files that still held the erased rows: `old_files` is "pending"
    (deleted by the first pipeline run after `due_at`), "overdue" (due, no run since), "deleted"
    (at `deleted_at`) or "not tracked" (logged before ops.erasures tracked them). None: no table."""
    e = frame("ops", "erasures")
    if e is None:
        return None
    e = e.copy()
    for col in ("files_due_at", "files_deleted_at"):
        if col not in e.columns:
            e[col] = pd.NaT
    now = pd.Timestamp(now or datetime.now(timezone.utc))
    out = e.groupby("erasure_id", sort=False).agg(
        requested_at=("requested_at", "min"), users=("user_id_hash", "count"),
        status=("status", lambda s: "failed" if (s == "failed").any() else str(s.iloc[0])),
        due_at=("files_due_at", "max"), deleted_at=("files_deleted_at", "max"),
        undeleted=("files_deleted_at", lambda s: int(s.isna().sum()))).reset_index()
    tracked = out["due_at"].notna()
    deleted = tracked & (out["undeleted"] == 0)
    out["deleted_at"] = out["deleted_at"].where(deleted)
    out["old_files"] = np.select([deleted, tracked & (out["due_at"] <= now), tracked],
                                 ["deleted", "overdue", "pending"], "not tracked")
    out = out.drop(columns=["undeleted"])
    return out.sort_values("requested_at", ascending=False, na_position="last").reset_index(drop=True)


def reporting_timezone() -> str:
    """The reporting timezone of the latest pipeline run (UTC when unknown)."""
    run = last_run()
    tz = run.get("timezone") if run else None
    return str(tz) if isinstance(tz, str) and tz.strip() else "UTC"


# --------------------------------------------------------------------------- SQL catalog

# What SQL Lab offers besides every gold table: two silver tables, without personal data or lineage
# (docs/dashboard.md, "What SQL Lab can query"). user_id and session_id are the pseudonymous ids gold
# already shows; the typed property columns are offered, the raw `properties` JSON is not.
SQL_SILVER_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("event_id", "event", "ts", "user_id", "session_id", "country", "device", "os", "app_version",
               "page", "item_id", "item_type", "category", "price", "quantity", "cart_value", "order_id",
               "amount", "currency", "payment_status", "course_id", "progress_pct", "quiz_id", "score",
               "max_score", "passed", "duration_s", "points", "reason", "reward", "channel"),
    "sessions": ("user_id", "session_id", "session_start", "session_end", "events", "duration_s", "is_derived"),
}
# Columns of those tables (and of silver.users) that are left out, and why (SQL Lab's refusal says it).
SQL_WITHHELD_COLUMNS: dict[str, str] = {
    "city": "a city with a country and a time narrows events down to a person (quasi-identifier)",
    "referrer": "a referring URL can carry e-mail addresses, tokens or search terms",
    "properties": "the raw properties JSON holds whatever a client sent; use the typed property columns",
    "source_file": "lineage (internal file paths)",
    "batch_id": "lineage",
    "ingested_at": "lineage",
    "email_hash": "personal data (silver.users is not offered)",
    "email": "personal data",
    "birth_date": "personal data (silver.users is not offered)",
    "registered_at": "silver.users is not offered",
}
# Lake tables SQL Lab does not offer, and why.
SQL_NOT_OFFERED: dict[str, str] = {
    "silver.users": "profiles with personal data (e-mail hash, birth date, city); gold.users has the profile "
                    "columns SQL Lab offers",
    "silver.quarantine": "rejected lines as they arrived, which may hold anything a client sent",
}


def _sql_dataset(name: str):
    """silver.<name> at its current version as a pyarrow dataset of the offered columns only: nothing is
    read until a query scans it (DuckDB pushes its projection and filters into the Parquet scan)."""
    def build():
        path = table_path("silver", name)
        version = delta_version(path)
        if version is None:
            return None
        try:
            dataset = DeltaTable(str(path), version=version).to_pyarrow_dataset()
        except Exception as exc:  # noqa: BLE001 - an unreadable table is left out of SQL Lab
            log.warning("cannot open silver.%s at version %s for SQL Lab: %s", name, version, exc)
            return None
        offered = set(SQL_SILVER_COLUMNS[name])
        return dataset.replace_schema(pa.schema([f for f in dataset.schema if f.name in offered]))
    return derived(f"sql:silver.{name}", (("silver", name),), build)


def sql_tables() -> dict[str, object]:
    """SQL Lab's catalogue, keyed `gold.<name>` / `silver.<name>`: every existing gold table as Arrow
    (loaded, cached per version) and silver.events / silver.sessions as lazy pyarrow datasets limited to
    the offered columns (a new Delta version, e.g. after `lakehouse forget`, gives a new dataset)."""
    out: dict[str, object] = {}
    for layer, name in list_tables():
        if layer == "gold":
            t = read_arrow(layer, name)
            if t is not None:
                out[f"gold.{name}"] = t
    for name in SQL_SILVER_COLUMNS:
        dataset = _sql_dataset(name)
        if dataset is not None:
            out[f"silver.{name}"] = dataset
    return out


def sql_table_rows(qualified: str) -> int | None:
    """Rows of a SQL Lab table at its current version, from the Delta log (no data read)."""
    layer, _, name = qualified.partition(".")
    version = table_version(layer, name)
    if version is None:
        return None
    try:
        return _table_details(layer, name, version)["rows"]
    except Exception:  # noqa: BLE001 - the count is a hint only
        return None


def warm_up() -> None:
    """Load the big tables and indexes once (at startup, in the background)."""
    try:
        lake_bounds()
        activity()
        users_frame()
        filter_options()
        for name in GOLD_TABLES:
            if name != "user_activity_daily":  # used through the activity index, never as pandas
                gold(name)
        table_health()  # the health page's per-table log details
    except Exception as exc:  # noqa: BLE001 - warming is best effort
        log.warning("warm-up failed: %s", exc)
