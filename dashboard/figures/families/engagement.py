"""Engagement figures: active users, stickiness, new vs existing active users."""

from __future__ import annotations

import pandas as pd

from ...definitions import period_label
from ...theme import series_color
from ..core import Fig, add_bars, add_line, attach_csv, base, base2, empty, is_empty, shade_partial, time_axis


def active_users(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """DAU/WAU/MAU lines (day) or distinct active users and average DAU per week/month."""
    if is_empty(df, ["active"]):
        return empty(theme=theme)
    fig = base(theme)
    part = df["partial"].to_numpy(bool)
    if grain == "day":
        for col, name in (("dau", "DAU"), ("wau", "WAU"), ("mau", "MAU")):
            add_line(fig, df, "period", col, name, series_color(col), grain=grain)
        cols = ["period", "dau", "wau", "mau"]
    else:
        word = "Weekly" if grain == "week" else "Monthly"
        add_line(fig, df, "period", "active", f"{word} active users", series_color("active"), grain=grain,
                 partial=part)
        add_line(fig, df, "period", "avg_dau", "Average DAU", series_color("avg_dau"), fmt="float", grain=grain,
                 partial=part)
        cols = ["period", "active", "avg_dau", "partial"]
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", rangemode="tozero", tickformat="~s")
    return attach_csv(fig, df, cols)


def stickiness(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Stickiness (DAU/MAU) over time."""
    if is_empty(df, ["stickiness"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = period_label("stickiness", grain)
    add_line(fig, df, "period", "stickiness", name, series_color("stickiness"), fmt="pct", grain=grain,
             partial=df["partial"].to_numpy(bool), fill="tozeroy")
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".0%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df, ["period", "stickiness", "partial"])


def new_vs_existing(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """New and existing active users as stacked bars, the new-to-active ratio on a second axis."""
    if is_empty(df, ["new_active_users", "existing_active_users"]):
        return empty(theme=theme)
    fig = base2(theme, barmode="stack")
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "existing_active_users", "Existing", series_color("existing_active_users"),
             partial=part)
    add_bars(fig, df, "period", "new_active_users", "New", series_color("new_active_users"), partial=part)
    add_line(fig, df, "period", "new_ratio", "New / active", series_color("new_ratio"), fmt="pct", grain=grain,
             partial=part, secondary_y=True)
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    fig.axis("yaxis2", tickformat=".1~%")
    return attach_csv(fig, df, ["period", "new_active_users", "existing_active_users", "new_ratio", "partial"])
