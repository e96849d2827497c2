"""Retention: cohort tables (daily and weekly cohorts), the average curve and the Dn cards."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from ...filters import Filters, previous_period
from ...wording import count
from ..activity import activity, distinct_pairs, users_frame, users_mask
from ..kpi import Kpi, compare_periods
from ..lake import UAD, USERS, cached, gold, has, lake_bounds, resolve
from ..periods import d2i, day_stamps


def retention_kpis(f: Filters) -> list[Kpi] | None:
    """D1 / D7 / D30 retention of the cohorts in the range, against the previous period's cohorts."""
    p = compare_periods(f)
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
        out = pd.DataFrame({"cohort": day_stamps(cday[ok]), "n": kk[ok].astype(int), "cohort_size": sizes[cc[ok]],
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
