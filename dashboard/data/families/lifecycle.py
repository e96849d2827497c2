"""Lifecycle: new / returning / resurrecting / dormant users per period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...filters import Filters
from ..activity import activity, distinct_pairs, row_index
from ..lake import UAD, USERS, cached, gold_range, lake_bounds, resolve
from ..periods import BIG, Periods, d2i, period_code, period_start

LIFECYCLE_COLUMNS = ["new", "returning", "resurrecting", "dormant"]


def lifecycle(f: Filters) -> pd.DataFrame | None:
    """new / returning / resurrecting / dormant per period (gold lifecycle_daily when unfiltered daily)."""
    rng = resolve(f)
    bounds = lake_bounds()
    if rng is None or bounds is None:
        return None
    lo, hi = rng
    if f.grain == "day" and not f.user_filtered and (lc := gold_range("lifecycle_daily", f)) is not None:
        out = lc.rename(columns={"activity_date": "period"})[["period"] + LIFECYCLE_COLUMNS].copy()
        out["period"] = pd.DatetimeIndex(out["period"])
        out["partial"] = False
        return out.reset_index(drop=True)

    def build():
        act = activity()
        if act is None:
            return None
        per = Periods.of(lo, hi, f.grain)
        k, c0 = per.k, per.codes[0]
        sel = row_index(act, f, int(period_start(c0 - 1, f.grain)), per.hi)
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

        out = per.frame(partial_from=d2i(bounds[0]), new=count(is_new), returning=count(had_prev & ~is_new),
                        resurrecting=count(~had_prev & ~is_new), dormant=count(leaves, 1))
        first_lake = period_code(d2i(bounds[0]), f.grain)
        out.loc[per.codes == first_lake, LIFECYCLE_COLUMNS] = np.nan
        return out

    return cached("lifecycle", (UAD, USERS, ("gold", "lifecycle_daily")), (f.key(), lo, hi), build)
