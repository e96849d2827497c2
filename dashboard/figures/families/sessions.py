"""Sessions figures: sessions per period and session length / time per active user."""

from __future__ import annotations

import pandas as pd

from ...theme import series_color
from ..core import NO_DATA, Fig, add_bars, add_line, attach_csv, base, base2, empty, is_empty, shade_partial, time_axis


def sessions(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Sessions per period (bars) and sessions per active user (line)."""
    if is_empty(df, ["sessions"]):
        return empty(theme=theme)
    fig = base2(theme)
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "sessions", "Sessions", series_color("sessions"), partial=part)
    add_line(fig, df, "period", "sessions_per_user", "Sessions per active user", series_color("sessions_per_user"),
             fmt="float", grain=grain, partial=part, secondary_y=True)
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df, ["period", "sessions", "user_days", "sessions_per_user", "partial"])


def session_length(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Average session length and average daily time per active user, in minutes."""
    if df is None or not len(df) or df["avg_session_seconds"].isna().all():
        return empty("Session lengths are not split by user attributes: clear the country/device/gender/age "
                     "filters" if df is not None and len(df) else NO_DATA, theme)
    d = df.assign(avg_session_min=df["avg_session_seconds"] / 60,
                  avg_time_per_user_min=df["avg_time_per_user_seconds"] / 60)
    fig = base(theme, margin={"l": 64})
    part = d["partial"].to_numpy(bool)
    add_line(fig, d, "period", "avg_session_min", "Avg session (min)", series_color("avg_session_seconds"),
             fmt="float", grain=grain, partial=part)
    add_line(fig, d, "period", "avg_time_per_user_min", "Avg daily time per active user (min)",
             series_color("avg_time_per_user_seconds"), fmt="float", grain=grain, partial=part)
    shade_partial(fig, d, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", rangemode="tozero", title={"text": "minutes"})
    return attach_csv(fig, d, ["period", "avg_session_seconds", "avg_time_per_user_seconds", "partial"])
