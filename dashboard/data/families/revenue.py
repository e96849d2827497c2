"""Revenue: revenue, orders, buyers, ARPU/ARPPU and conversion per period, by device, by currency sent,
the Pareto of revenue per user, and the reporting currency every money figure names."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...definitions import LABELS
from ...filters import Filters
from ..activity import activity, distinct_per_period, period_rows, row_index, user_filter_key, users_per_period
from ..daily import daily_metrics, per_day, range_counts
from ..kpi import Kpi, compare_periods, current_and_previous, of_active, prev_of, ratio, sum_of
from ..lake import UAD, USERS, cached, derived, gold, gold_range, has, read_arrow, resolve
from ..periods import Periods, d2i


def revenue_kpis(f: Filters) -> list[Kpi] | None:
    """Revenue page cards: revenue, orders, buyers, ARPU, ARPPU, conversion (distinct users over the range)."""
    p = compare_periods(f)
    if p is None:
        return None
    cur, prev, rc, prc = current_and_previous(f, p)
    rev, prev_rev = sum_of(cur["revenue"]), prev_of(prev, sum_of, "revenue")
    cur_code = reporting_currency()
    with np.errstate(invalid="ignore", divide="ignore"):
        dau = cur["dau"].where(cur["dau"] > 0)
        buyers_d = cur["buyers"].where(cur["buyers"] > 0)
        return [
            Kpi("revenue", "Revenue", rev, prev_rev, cur["revenue"], fmt="money", unit=cur_code),
            Kpi("orders", "Orders", sum_of(cur["orders"]), prev_of(prev, sum_of, "orders"), cur["orders"]),
            Kpi("buyers", "Buyers", rc.get("buyers"), prc.get("buyers"), cur["buyers"]),
            Kpi("arpu", "ARPU", ratio(rev, rc.get("active")), ratio(prev_rev, prc.get("active")),
                cur["revenue"] / dau, fmt="money", unit=cur_code),
            Kpi("arppu", "ARPPU", ratio(rev, rc.get("buyers")), ratio(prev_rev, prc.get("buyers")),
                cur["revenue"] / buyers_d, fmt="money", unit=cur_code),
            Kpi("conversion_rate", LABELS["range_conversion_rate"], ratio(rc.get("buyers"), rc.get("active")),
                ratio(prc.get("buyers"), prc.get("active")), cur["buyers"] / dau, fmt="pct",
                note=of_active(rc, "buyers", "buyer"), info_key="range_conversion_rate"),
        ]


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
        out = per_day(daily.rename(columns={"dau": "active"}),
                      ["orders", "revenue", "buyers", "failed_payments", "active"])
    else:
        def build():
            per = Periods.of(lo, hi, f.grain)
            sums = ["orders", "revenue", "failed_payments"]
            g = per.of_daily(daily, sums)
            res = per.frame()
            for c in sums:
                res[c] = per.align(g[c].sum(min_count=1))
            return res.assign(**users_per_period(activity(), f, per, buyers=("purchases",)))
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
    per = Periods.of(*rng, f.grain)

    def build():
        sel, u, p = period_rows(act, f, per)
        dev = act.codes["device"][sel]
        buy = act.num["purchases"][sel] > 0
        frames = []
        for j, name in enumerate(act.cats["device"]):
            m = dev == j
            if not m.any():
                continue
            bm = m & buy
            frames.append(per.frame(device=name, active=distinct_per_period(u[m], p[m], per),
                                    buyers=distinct_per_period(u[bm], p[bm], per)))
        if not frames:
            return pd.DataFrame(columns=["period", "device", "active", "buyers", "partial", "conversion_rate"])
        out = pd.concat(frames, ignore_index=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["conversion_rate"] = out["buyers"] / out["active"].where(out["active"] > 0)
        return out
    return cached("conv_device", (UAD, USERS), (f.key(), *rng), build)


def pareto(f: Filters) -> pd.DataFrame | None:
    """Paying users ranked by revenue in the range with cumulative shares of users and revenue."""
    rng = resolve(f)  # None also when the lake has no bounds
    if rng is None:
        return None
    lo, hi = rng
    act = activity()

    def build():
        if act is not None:
            sel = row_index(act, f, d2i(lo), d2i(hi))
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
    return cached("pareto", (UAD, USERS, ("gold", "user_revenue")), (user_filter_key(f), lo, hi), build)


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


def revenue_by_currency(f: Filters) -> pd.DataFrame | None:
    """Successful purchases in the range per currency as sent (gold.revenue_by_currency_daily): orders,
    the original amounts (in that currency), revenue in the reporting currency and its share, and
    whether the currency was converted on every day (False: some or all orders had no rate)."""
    d = gold_range("revenue_by_currency_daily", f)
    if d is None:
        return None
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
