"""Content: top events and pages, hourly activity, quizzes and course progress (gold tables read as they
are, in the range where they have dates)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...filters import Filters
from ..lake import gold, gold_range


def _top(name: str, key: str, value: str, f: Filters, n: int) -> pd.DataFrame | None:
    t = gold_range(name, f)
    if t is None:
        return None
    g = t.groupby(key, as_index=False)[[value, "users"]].sum().sort_values(value, ascending=False)
    return g.head(n).reset_index(drop=True)


def top_events(f: Filters, n: int = 15) -> pd.DataFrame | None:
    """Most frequent events in the range (event_counts_daily)."""
    return _top("event_counts_daily", "event", "events", f, n)


def top_pages(f: Filters, n: int = 15) -> pd.DataFrame | None:
    """Most viewed pages in the range (page_views_daily)."""
    return _top("page_views_daily", "page", "views", f, n)


def hourly(event: str) -> pd.DataFrame | None:
    """A 7 x 24 grid (day_of_week 1..7 x hour 0..23) of an event's counts, zero-filled."""
    h = gold("hourly_activity")
    if h is None:
        return None
    h = h[h["event"] == event]
    grid = pd.DataFrame({"day_of_week": np.repeat(np.arange(1, 8), 24), "hour": np.tile(np.arange(24), 7)})
    g = h.groupby(["day_of_week", "hour"], as_index=False)["events"].sum()
    out = grid.merge(g, on=["day_of_week", "hour"], how="left").fillna({"events": 0})
    return out


def quizzes(f: Filters) -> pd.DataFrame | None:
    """Per quiz over the range: attempts, participants (summed over days), passes, pass rate."""
    q = gold_range("quiz_daily", f)
    if q is None:
        return None
    g = q.groupby("quiz_id", as_index=False)[["attempts", "participants", "passes"]].sum()
    g["pass_rate"] = g["passes"] / g["attempts"].where(g["attempts"] > 0)
    return g.sort_values("quiz_id").reset_index(drop=True)


def courses() -> pd.DataFrame | None:
    """course_progress as is, by completion rate."""
    c = gold("course_progress")
    return None if c is None else c.sort_values("completion_rate", ascending=False).reset_index(drop=True)
