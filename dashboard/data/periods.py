"""Date and period maths: day numbers (days since 1970-01-01) and their day, Monday-week or
calendar-month periods, as the pipeline's gold tables define them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import pandas as pd


EPOCH = date(1970, 1, 1)


BIG = np.int64(1 << 40)


def d2i(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def i2d(i: int) -> date:
    """Inverse of d2i."""
    return EPOCH + timedelta(days=int(i))


def day_stamps(days) -> pd.DatetimeIndex:
    """Day numbers -> pandas datetimes (what the figures plot)."""
    return pd.to_datetime(np.asarray(days, dtype="int64"), unit="D")


def period_code(day, grain: str):
    """Period number of a day number: the day itself, its Monday-week, or its calendar month."""
    day = np.asarray(day, dtype=np.int64)
    if grain == "week":
        return (day + 3) // 7  # 1970-01-05 (day 4) is a Monday
    if grain == "month":
        return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return day


def period_start(code, grain: str):
    """First day number of a period."""
    code = np.asarray(code, dtype=np.int64)
    if grain == "week":
        return code * 7 - 3
    if grain == "month":
        return code.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return code


def period_end(code, grain: str):
    """Last day number of a period."""
    return period_start(np.asarray(code, dtype=np.int64) + 1, grain) - 1


@dataclass(frozen=True)
class Periods:
    """The periods (days, Monday-weeks or calendar months) touching the days [lo, hi] (day numbers), and
    the ways a metric puts values on them: positions, counts, per-period aggregates, the result frame."""

    lo: int
    hi: int
    grain: str

    @classmethod
    def of(cls, lo: date, hi: date, grain: str) -> Periods:
        """The periods of the dates [lo, hi] at a grain (day | week | month)."""
        return cls(d2i(lo), d2i(hi), grain)

    @cached_property
    def codes(self) -> np.ndarray:
        """Period codes (see period_code), ascending."""
        return np.arange(period_code(self.lo, self.grain), period_code(self.hi, self.grain) + 1)

    @cached_property
    def starts(self) -> np.ndarray:
        """First day number of each period."""
        return period_start(self.codes, self.grain)

    @cached_property
    def ends(self) -> np.ndarray:
        """Last day number of each period."""
        return period_end(self.codes, self.grain)

    @property
    def k(self) -> int:
        """How many periods."""
        return len(self.codes)

    def partial(self, first: int | None = None) -> np.ndarray:
        """A week/month is partial when [first (default lo), hi] does not cover all of its days."""
        if self.grain == "day":
            return np.zeros(self.k, dtype=bool)
        return (self.starts < (self.lo if first is None else first)) | (self.ends > self.hi)

    def frame(self, partial_from: int | None = None, **columns) -> pd.DataFrame:
        """A metric's result: `period` (first day, as a datetime), the given columns, then `partial`
        (counted from `partial_from` instead of lo when given)."""
        return pd.DataFrame({"period": day_stamps(self.starts), **columns, "partial": self.partial(partial_from)})

    def position(self, days) -> np.ndarray:
        """0-based period of each day number."""
        return period_code(days, self.grain) - self.codes[0]

    def count(self, positions: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """How many (or the sum of `weights`) per period, as floats, from 0-based positions."""
        return np.bincount(positions, weights, minlength=self.k)[: self.k].astype(float)

    def of_daily(self, daily: pd.DataFrame, columns: list[str]):
        """Columns of a per-day frame (indexed by date) grouped by period (a pandas GroupBy)."""
        days = np.array([d2i(x.date()) for x in daily.index])
        return pd.DataFrame(daily[columns].to_numpy(dtype=float), columns=columns).groupby(self.position(days))

    def align(self, per_position: pd.Series) -> np.ndarray:
        """A per-position aggregate as one value per period (NaN where a period has none)."""
        return per_position.reindex(range(self.k)).to_numpy()
