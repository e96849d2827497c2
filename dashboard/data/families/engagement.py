"""Engagement: active users per period (DAU/WAU/MAU, stickiness, new vs existing) and the overview's cards."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...definitions import LABELS
from ...filters import Filters
from ..activity import activity, distinct_pairs, period_rows
from ..daily import daily_metrics
from ..kpi import Kpi, compare_periods, current_and_previous, last_of, mean_of, of_active, prev_of, ratio, sum_of
from ..lake import UAD, USERS, cached, resolve
from ..periods import BIG, Periods, day_stamps, period_code
from .retention import retention_kpi
from .revenue import reporting_currency


def kpis(f: Filters) -> list[Kpi] | None:
    """The overview cards for the selected range, compared with the previous period of equal length."""
    p = compare_periods(f)
    if p is None:
        return None
    lo, hi, plo, phi, has_prev = p
    cur, prev, rc, prc = current_and_previous(f, p)
    cards = [
        Kpi("dau", "DAU (avg)", mean_of(cur["dau"]), prev_of(prev, mean_of, "dau"), cur["dau"]),
        Kpi("wau", "WAU", last_of(cur["wau"]), prev_of(prev, last_of, "wau"), cur["wau"]),
        Kpi("mau", "MAU", last_of(cur["mau"]), prev_of(prev, last_of, "mau"), cur["mau"]),
        Kpi("stickiness", LABELS["stickiness_avg"], mean_of(cur["stickiness"]),
            prev_of(prev, mean_of, "stickiness"), cur["stickiness"], fmt="pct", info_key="stickiness_avg"),
        Kpi("new_users", "New users", sum_of(cur["new_users"]), prev_of(prev, sum_of, "new_users"), cur["new_users"]),
    ]
    if rc:
        cards.append(Kpi("active_users", "Active users", float(rc["active"]),
                         float(prc["active"]) if prc else None, cur["dau"],
                         note=f"{rc['new']:,} new · {rc['active'] - rc['new']:,} existing"))
    cards.append(Kpi("outstanding_points", "Outstanding points", last_of(cur["outstanding_points"]),
                     prev_of(prev, last_of, "outstanding_points"), cur["outstanding_points"]))
    cards.append(Kpi("revenue", "Revenue", sum_of(cur["revenue"]), prev_of(prev, sum_of, "revenue"), cur["revenue"],
                     fmt="money", unit=reporting_currency()))
    with np.errstate(invalid="ignore", divide="ignore"):
        conv_spark = cur["buyers"] / cur["dau"].where(cur["dau"] > 0)
    cards.append(Kpi("conversion_rate", LABELS["range_conversion_rate"], ratio(rc.get("buyers"), rc.get("active")),
                     ratio(prc.get("buyers"), prc.get("active")), conv_spark, fmt="pct",
                     note=of_active(rc, "buyers", "buyer"), info_key="range_conversion_rate"))
    d7 = retention_kpi(f, 7, lo, hi)
    cards.append(d7 if d7 is not None else Kpi("d7", "D7 retention", None, None, pd.Series(dtype=float),
                                               fmt="pct", note="gold.retention_daily not in the lake yet"))
    return cards


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
        per = Periods.of(lo, hi, f.grain)
        out = per.frame(period_end=day_stamps(per.ends))
        g = per.of_daily(daily_metrics(f, lo, hi), ["dau", "stickiness", "new_users"])
        out["avg_dau"] = per.align(g["dau"].mean())
        out["stickiness"] = per.align(g["stickiness"].mean())
        out["new_users"] = per.align(g["new_users"].sum(min_count=1))
        if act is None:
            for c in ("active", "new_active_users", "existing_active_users", "new_ratio"):
                out[c] = np.nan
            return out
        _, u, p = period_rows(act, f, per)
        first = distinct_pairs(u, p)
        up, pp = u[first], p[first] - per.codes[0]
        active = per.count(pp)
        new = per.count(pp[period_code(act.first_seen[up].clip(0, BIG // 2), f.grain) == pp + per.codes[0]])
        out["active"] = active
        out["new_active_users"] = new
        out["existing_active_users"] = active - new
        with np.errstate(invalid="ignore", divide="ignore"):
            out["new_ratio"] = np.where(active > 0, new / np.maximum(active, 1), np.nan)
            if f.grain == "month":  # the contract's monthly stickiness: avg DAU / calendar-month MAU
                out["stickiness"] = np.where(active > 0, out["avg_dau"] / np.maximum(active, 1), np.nan)
        return out

    return cached("engagement", (UAD, USERS, ("gold", "engagement_daily")), (f.key(), lo, hi), build)
