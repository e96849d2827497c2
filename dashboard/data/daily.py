"""Per-day metrics over a range (`daily_metrics`) and distinct users over a whole range (`range_counts`).

Without a user filter the numbers come straight from the gold daily aggregates; under a
country/device/gender/age-group filter they are computed from user_activity_daily (see `activity`).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..filters import Filters
from .activity import activity, rolling_distinct, row_index, user_filter_key, users_frame, users_mask
from .lake import UAD, USERS, cached, read_arrow
from .periods import d2i, day_stamps


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
    idx = day_stamps(np.arange(lo, hi + 1))
    if act is None:
        return pd.DataFrame({c: np.full(n, np.nan) for c in DAILY_COLUMNS}, index=idx.rename("date"))
    rows = row_index(act, f, lo - 29, hi)
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
    before = row_index(act, f, -(1 << 30), lo - 1)
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
        return cached("daily", deps, (user_filter_key(f), lo, hi), lambda: _computed_daily(f, lo, hi))

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


def per_day(daily: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns of daily_metrics as a metric's result at day grain: `period` first, then the columns, then
    `partial` (never, for a day)."""
    out = daily[columns].copy()
    out.index.name = "period"
    out = out.reset_index()
    out["partial"] = False
    return out


def range_counts(f: Filters, lo: date, hi: date) -> dict[str, int] | None:
    """Distinct users in [lo, hi] under f's filters: active, new (first seen in the range), buyers, participants."""
    act = activity()
    if act is None:
        return None

    def build():
        a, b = d2i(lo), d2i(hi)
        sel = row_index(act, f, a, b)
        u = act.user[sel]

        def distinct(m=None):
            x = u if m is None else u[m]
            return int(len(x) and (np.r_[True, x[1:] != x[:-1]]).sum())  # rows are sorted by user

        first_u = u[np.r_[True, u[1:] != u[:-1]]] if len(u) else u
        fs = act.first_seen[first_u]
        part = (act.num["points_earned"][sel] > 0) | (act.num["points_redeemed"][sel] > 0)
        return {"active": distinct(), "new": int(((fs >= a) & (fs <= b)).sum()),
                "buyers": distinct(act.num["purchases"][sel] > 0), "participants": distinct(part)}
    return cached("range_counts", (UAD, USERS), (user_filter_key(f), lo, hi), build)
