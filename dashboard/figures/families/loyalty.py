"""Loyalty figures: points earned and redeemed, outstanding points, participation, balances."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...definitions import period_label
from ...theme import series_color
from ...wording import count
from ..core import Fig, add_bars, add_line, attach_csv, base, empty, is_empty, shade_partial, time_axis


def points(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Points earned vs redeemed per period."""
    if is_empty(df, ["points_earned", "points_redeemed"]):
        return empty(theme=theme)
    fig = base(theme, barmode="group")
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "points_earned", "Earned", series_color("points_earned"), partial=part)
    add_bars(fig, df, "period", "points_redeemed", "Redeemed", series_color("points_redeemed"), partial=part)
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df, ["period", "points_earned", "points_redeemed", "partial"])


def outstanding(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Outstanding points (earned minus redeemed, cumulative) at the end of each period."""
    if is_empty(df, ["outstanding_points"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    add_line(fig, df, "period", "outstanding_points", "Outstanding points", series_color("outstanding_points"),
             grain=grain, partial=df["partial"].to_numpy(bool), fill="tozeroy")
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df, ["period", "outstanding_points", "partial"])


def participation(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Participation rate (participants / active users) over time."""
    if is_empty(df, ["participation_rate"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = period_label("participation_rate", grain)
    add_line(fig, df, "period", "participation_rate", name, series_color("participation_rate"),
             fmt="pct", grain=grain, partial=df["partial"].to_numpy(bool))
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".0%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df, ["period", "participants", "active", "participation_rate", "partial"])


def balance_histogram(df: pd.DataFrame | None, theme: str = "light", bins: int = 30) -> Fig:
    """Distribution of users' point balances."""
    if df is None or not len(df):
        return empty(theme=theme)
    vals = df["balance"].to_numpy(dtype=float)
    counts, edges = np.histogram(vals[np.isfinite(vals)], bins=bins)
    t = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "users": counts})
    fig = base(theme, hovermode="closest", bargap=0.05, showlegend=False, margin={"l": 64, "t": 16})
    fig.add("bar", x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges) * 0.95,
            marker={"color": series_color("balance")}, customdata=np.stack([edges[:-1], edges[1:]], -1),
            hovertext=[count(n, "user") for n in counts],
            hovertemplate="Balance %{customdata[0]:,.0f}–%{customdata[1]:,.0f}: %{hovertext}<extra></extra>")
    fig.axis("xaxis", title={"text": "balance (points)"}, tickformat="~s")
    fig.axis("yaxis", title={"text": "users"}, tickformat="~s")
    return attach_csv(fig, t)
