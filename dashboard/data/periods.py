"""Date and period maths: day numbers (days since 1970-01-01) and their day, Monday-week or
calendar-month periods, as the pipeline's gold tables define them."""

from __future__ import annotations

from datetime import date, timedelta

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


def periods(lo: int, hi: int, grain: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Period codes touching [lo, hi], their first and last day."""
    codes = np.arange(period_code(lo, grain), period_code(hi, grain) + 1)
    return codes, period_start(codes, grain), period_end(codes, grain)


def partial_periods(starts: np.ndarray, ends: np.ndarray, lo: int, hi: int, grain: str) -> np.ndarray:
    """A week/month is partial when the range (clipped to the lake) does not cover all of its days."""
    if grain == "day":
        return np.zeros(len(starts), dtype=bool)
    return (starts < lo) | (ends > hi)
