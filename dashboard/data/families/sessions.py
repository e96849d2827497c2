"""Sessions: sessions, active user-days, session length and time per active user per period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...filters import Filters
from ..daily import daily_metrics
from ..lake import gold_range, resolve
from ..periods import Periods


def sessions(f: Filters) -> pd.DataFrame | None:
    """Sessions, active users, average session length and daily time per active user per period."""
    rng = resolve(f)
    if rng is None:
        return None
    lo, hi = rng
    per = Periods.of(lo, hi, f.grain)
    base = per.frame()
    if f.user_filtered:
        daily = daily_metrics(f, lo, hi)
        if daily["dau"].isna().all():
            return None
        g = per.of_daily(daily, ["sessions", "dau"]).sum()
        base["sessions"] = per.align(g["sessions"])
        base["user_days"] = per.align(g["dau"])
        base["total_session_seconds"] = np.nan
    else:
        sd = gold_range("sessions_daily", f)
        if sd is None:
            return None
        days = sd["activity_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
        g = sd[["sessions", "users", "total_session_seconds"]].astype(float).groupby(per.position(days)).sum()
        base["sessions"] = per.align(g["sessions"])
        base["user_days"] = per.align(g["users"])
        base["total_session_seconds"] = per.align(g["total_session_seconds"])
    ndays = (np.minimum(per.ends, per.hi) - np.maximum(per.starts, per.lo) + 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        base["sessions_per_day"] = base["sessions"] / ndays
        base["avg_session_seconds"] = base["total_session_seconds"] / base["sessions"].where(base["sessions"] > 0)
        base["avg_time_per_user_seconds"] = base["total_session_seconds"] / base["user_days"].where(
            base["user_days"] > 0)
        base["sessions_per_user"] = base["sessions"] / base["user_days"].where(base["user_days"] > 0)
    return base
