"""The distinct-count engine: gold.user_activity_daily and gold.users as numpy arrays.

`activity()` holds user_activity_daily sorted by (user, day) with encoded dimensions; `row_index`
cuts a filter's rows out of it, `distinct_pairs` and `rolling_distinct` count distinct users per
period and over rolling windows (never sums of daily distincts). `users_frame` is gold.users without
private columns, `user_index` its demographic codes, `users_mask` a demographic filter on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..filters import DIMENSIONS, Filters
from .lake import UAD, USERS, derived, gold, read_arrow
from .periods import BIG, Periods, period_code


# columns never shown, whatever a future gold.users carries
PRIVATE_COLUMN_MARKERS = ("email", "password", "phone")


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


def user_filter_key(f: Filters) -> tuple:
    """The part of a filter that changes distinct-user counts of a given range (a cache key)."""
    return (f.country, f.device, f.gender, f.age_group)


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


def row_index(act: Activity, f: Filters | None, lo: int, hi: int) -> np.ndarray:
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


def period_rows(act: Activity, f: Filters, per: Periods) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f's rows in the days of `per` (see row_index), their user codes and period codes."""
    sel = row_index(act, f, per.lo, per.hi)
    return sel, act.user[sel], act.period(per.grain)[sel]


def distinct_per_period(user: np.ndarray, period: np.ndarray, per: Periods) -> np.ndarray:
    """Distinct users per period of `per`, from rows sorted by (user, day) and their period codes."""
    first = distinct_pairs(user, period)
    return per.count(period[first] - per.codes[0])


def users_per_period(act: Activity | None, f: Filters, per: Periods, **having: tuple[str, ...]
                     ) -> dict[str, np.ndarray]:
    """Distinct users per period under f: `active`, and for each name=(numeric columns) the users with one
    of those columns > 0 on a day of the period (e.g. buyers=("purchases",)); NaN without the index."""
    if act is None:
        return {name: np.full(per.k, np.nan) for name in ("active", *having)}
    sel, u, p = period_rows(act, f, per)
    out = {"active": distinct_per_period(u, p, per)}
    for name, columns in having.items():
        m = np.zeros(len(sel), dtype=bool)
        for c in columns:
            m |= act.num[c][sel] > 0
        out[name] = distinct_per_period(u[m], p[m], per)
    return out


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
