"""The `Kpi` card (value, previous period, sparkline) and the helpers that compare a range with the
previous period of equal length; each metric family builds its own cards with them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..filters import Filters, previous_period
from ..wording import count
from .daily import daily_metrics, range_counts
from .lake import lake_bounds, resolve


@dataclass
class Kpi:
    """One overview card: value in the range, value in the previous period, daily sparkline."""

    key: str
    label: str
    value: float | None
    previous: float | None
    spark: pd.Series
    fmt: str = "int"          # int | pct | money | float
    note: str = ""
    unit: str = ""            # shown after the value, e.g. the reporting currency of money
    info_key: str = ""        # the definition shown by the (i) tooltip (default: key)

    @property
    def definition_key(self) -> str:
        """Key of the card's definition in dashboard.definitions."""
        return self.info_key or self.key

    @property
    def change(self) -> float | None:
        """Change against the previous period (None when not comparable): relative for counts and money,
        the difference (in rate units, 0.048 = 4.8 percentage points) for a rate (fmt 'pct')."""
        if self.value is None or self.previous is None or not np.isfinite(self.previous):
            return None
        if not np.isfinite(self.value):
            return None
        if self.fmt == "pct":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous)

    @property
    def change_text(self) -> str:
        """'+17.5%' for a relative change, '+4.8 pp' (percentage points) for a change of a rate; '' when none."""
        ch = self.change
        if ch is None:
            return ""
        return f"{ch * 100:+.1f} pp" if self.fmt == "pct" else f"{ch:+.1%}"


def mean_of(s: pd.Series) -> float | None:
    """Mean of the known values (None when there is none)."""
    v = s.astype(float).dropna()
    return float(v.mean()) if len(v) else None


def last_of(s: pd.Series) -> float | None:
    """The last known value (None when there is none): a level such as MAU or outstanding points."""
    v = s.astype(float).dropna()
    return float(v.iloc[-1]) if len(v) else None


def sum_of(s: pd.Series) -> float | None:
    """Sum of the known values (None when every value is unknown)."""
    v = s.astype(float)
    return float(v.sum()) if v.notna().any() else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when either is unknown or b is 0."""
    if a is None or b is None or not b:
        return None
    return a / b


def of_active(rc: dict, key: str, word: str) -> str:
    """'472 buyers of 1,511 active users in the range (line: per day)' under a range-level rate."""
    if not rc:
        return ""
    return f"{count(rc.get(key, 0), word)} of {count(rc.get('active', 0), 'active user')} in the range (line: per day)"


def compare_periods(f: Filters):
    """(lo, hi, previous lo, previous hi, whether the previous period is inside the lake)."""
    bounds = lake_bounds()
    rng = resolve(f)
    if bounds is None or rng is None:
        return None
    lo, hi = rng
    plo, phi = previous_period(lo, hi)
    return lo, hi, plo, phi, plo >= bounds[0]


def current_and_previous(f: Filters, p) -> tuple[pd.DataFrame, pd.DataFrame | None, dict, dict]:
    """For the periods `p` of compare_periods: daily metrics of the range and of the previous period (None
    outside the lake), and their distinct-user counts (range_counts; {} when unknown)."""
    lo, hi, plo, phi, has_prev = p
    daily = daily_metrics(f, plo if has_prev else lo, hi)
    cur = daily.loc[pd.Timestamp(lo):pd.Timestamp(hi)]
    prev = daily.loc[pd.Timestamp(plo):pd.Timestamp(phi)] if has_prev else None
    rc = range_counts(f, lo, hi) or {}
    prc = (range_counts(f, plo, phi) if has_prev else None) or {}
    return cur, prev, rc, prc


def prev_of(prev: pd.DataFrame | None, fn, col):
    """fn (mean_of, last_of, sum_of) of a column of the previous period (None without one)."""
    return fn(prev[col]) if prev is not None and len(prev) else None
