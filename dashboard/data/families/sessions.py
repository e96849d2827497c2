"""Sessions: sessions, active user-days, session length and time per active user per period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...filters import Filters
from ..daily import daily_metrics
from ..lake import gold_range, resolve
from ..periods import d2i, day_stamps, partial_periods, period_code, periods


def sessions(f: Filters) -> pd.DataFrame | None:
    """Sessions, active users, average session length and daily time per active user per period."""
    rng = resolve(f)
    if rng is None:
        return None
    lo, hi = rng
    a, b = d2i(lo), d2i(hi)
    codes, starts, ends = periods(a, b, f.grain)
    k = len(codes)
    base = pd.DataFrame({"period": day_stamps(starts), "partial": partial_periods(starts, ends, a, b, f.grain)})
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
        sd = gold_range("sessions_daily", f)
        if sd is None:
            return None
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
