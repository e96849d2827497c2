"""Loyalty: points earned and redeemed, participation, outstanding points and balances."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...definitions import LABELS
from ...filters import Filters
from ..activity import activity, users_frame, users_mask, users_per_period
from ..daily import daily_metrics, per_day
from ..kpi import Kpi, compare_periods, current_and_previous, last_of, of_active, prev_of, ratio, sum_of
from ..lake import UAD, USERS, cached, gold, has, resolve
from ..periods import Periods


def loyalty_kpis(f: Filters) -> list[Kpi] | None:
    """Loyalty page cards: outstanding points, earned, redeemed, participation over the range."""
    p = compare_periods(f)
    if p is None or (not f.user_filtered and not has("loyalty_daily")):
        return None
    cur, prev, rc, prc = current_and_previous(f, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = cur["participants"] / cur["dau"].where(cur["dau"] > 0)
    return [
        Kpi("outstanding_points", "Outstanding points", last_of(cur["outstanding_points"]),
            prev_of(prev, last_of, "outstanding_points"), cur["outstanding_points"]),
        Kpi("points_earned", "Points earned", sum_of(cur["points_earned"]), prev_of(prev, sum_of, "points_earned"),
            cur["points_earned"]),
        Kpi("points_redeemed", "Points redeemed", sum_of(cur["points_redeemed"]),
            prev_of(prev, sum_of, "points_redeemed"), cur["points_redeemed"]),
        Kpi("participation_rate", LABELS["range_participation_rate"],
            ratio(rc.get("participants"), rc.get("active")), ratio(prc.get("participants"), prc.get("active")),
            part, fmt="pct", note=of_active(rc, "participants", "participant"), info_key="range_participation_rate"),
    ]


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
        out = per_day(daily.assign(active=daily["dau"]), cols + ["active"])
    else:
        def build():
            per = Periods.of(lo, hi, f.grain)
            g = per.of_daily(daily, cols)
            res = per.frame()
            for c in ("points_earned", "points_redeemed"):
                res[c] = per.align(g[c].sum())
            res["outstanding_points"] = per.align(g["outstanding_points"].last())
            # distinct participants / active users of the period
            having = {"participants": ("points_earned", "points_redeemed")}
            return res.assign(**users_per_period(activity(), f, per, **having))
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
