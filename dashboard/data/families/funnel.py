"""Funnel: entries per step, conversion, distinct users per step, by device and over time
(gold.funnel_daily and gold.funnel_entries; docs/metrics.md, Funnel)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...filters import Filters
from ..lake import gold_range, resolve
from ..periods import Periods


def _window_complete(df: pd.DataFrame) -> pd.Series:
    """is_window_complete of funnel rows (all true for a gold written before the column existed)."""
    if "is_window_complete" not in df:
        return pd.Series(True, index=df.index)
    return df["is_window_complete"].fillna(True).astype(bool)


def _funnel_table_rows(name: str, f: Filters) -> pd.DataFrame | None:
    """A funnel gold table's rows in the range and for the selected devices (None: no such rows)."""
    rows = gold_range(name, f)
    if rows is None:
        return None
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
    per = Periods.of(*rng, f.grain)
    first_step, last_step = (rows["step_index"].min(), rows["step_index"].max()) if len(rows) else (0, 0)
    days = (rows["activity_date"].to_numpy().astype("datetime64[D]").astype(np.int64))
    pos = per.position(days)
    users = rows["users"].to_numpy(dtype=float)
    step = rows["step_index"].to_numpy()
    is_open = ~_window_complete(rows).to_numpy()
    counted = np.ones(len(rows), bool) if include_open else ~is_open

    def per_period(m):
        return per.count(pos[m], users[m])

    entries = per_period((step == first_step) & counted)
    done = per_period((step == last_step) & counted)
    open_entries = per_period((step == first_step) & is_open)
    out = per.frame(entries=entries, completions=done, open_entries=open_entries,
                    window_open=(open_entries > 0) & include_open)
    out["conversion_rate"] = out["completions"] / out["entries"].where(out["entries"] > 0)
    return out
