"""Funnel figures: the steps, the steps by device and the conversion rate over time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...definitions import LABELS
from ...theme import SERIES, category_color, muted, series_color
from ...wording import count
from ..core import Fig, add_line, attach_csv, base, empty, is_empty, jsonable, rgba, shade_partial, time_axis


def funnel(steps: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Funnel as bars (Amplitude style): users reaching each step, the drop-off from the previous step
    stacked above it in a light shade, % of the first step as label."""
    if steps is None or not len(steps) or not steps["users"].sum():
        return empty(theme=theme)
    users = steps["users"].to_numpy(float)
    first = users[0] if users[0] else np.nan
    custom = np.stack([users / first, steps["step_conversion"].fillna(1.0).to_numpy(float),
                       steps["drop_off"].to_numpy(float)], -1)
    distinct = (steps["distinct_users"].to_numpy(float) if "distinct_users" in steps
                else np.full(len(steps), np.nan))
    fig = base(theme, barmode="stack", hovermode="x unified", bargap=0.35, legend={"traceorder": "normal"},
               margin={"l": 68})
    fig.add("bar", x=steps["step_name"], y=users, name="Reached (entries)", marker={"color": series_color("entries")},
            text=[f"{u:,.0f} · {u / first:.1%}" if np.isfinite(first) else f"{u:,.0f}" for u in users],
            textposition="inside", insidetextanchor="end", textangle=0, customdata=custom,
            hovertext=[count(int(d), "distinct user") if np.isfinite(d) else "distinct users unknown"
                       for d in distinct],
            hovertemplate="Reached: %{y:,.0f} entries (user-days; %{hovertext}), %{customdata[0]:.1%} of first "
                          "step, %{customdata[1]:.1%} of previous<extra></extra>")
    fig.add("bar", x=steps["step_name"], y=steps["drop_off"].to_numpy(float), name="Dropped off",
            marker={"color": rgba(SERIES["dormant"], 0.25), "line": {"color": rgba(SERIES["dormant"], 0.6),
                                                                       "width": 1}},
            hovertemplate="Dropped off since previous step: %{y:,.0f}<extra></extra>")
    fig.axis("xaxis", type="category")
    fig.axis("yaxis", tickformat="~s", title={"text": "entries (user-days)"})
    return attach_csv(fig, steps)


def funnel_by_device(df: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Overall conversion to each step, per device (grouped bars)."""
    if df is None or not len(df):
        return empty(theme=theme)
    fig = base(theme, barmode="group", hovermode="x unified")
    for i, (dev, g) in enumerate(df.groupby("device", sort=True)):
        fig.add("bar", x=g["step_name"], y=g["overall_conversion"], name=str(dev),
                marker={"color": category_color("device", str(dev), i)},
                hovertext=[count(n, "entry") for n in g["users"]],
                hovertemplate=f"{dev}: %{{y:.1%}} (%{{hovertext}})<extra></extra>")
    fig.axis("yaxis", tickformat=".0%", range=[0, 1.05], title={"text": LABELS["overall_conversion"]})
    fig.axis("xaxis", type="category")
    return attach_csv(fig, df)


def funnel_rate(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Overall funnel conversion (last step / entries) over time.

    Periods whose rate includes entries whose conversion window is not yet closed (`window_open`,
    only when they are included) are drawn dotted in a lighter shade, with "window not yet closed" on
    hover; when such entries are left out (the default), a note says how many.
    """
    open_total = float(df["open_entries"].sum()) if df is not None and "open_entries" in df else 0.0
    if is_empty(df, ["conversion_rate"]):
        if open_total:
            return empty(f"Every funnel entry here is still inside its conversion window (window not yet closed): "
                         f"{count(int(open_total), 'entry')} left out", theme)
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = LABELS["overall_conversion"]
    color = series_color("conversion_rate")
    win = df["window_open"].to_numpy(bool) if "window_open" in df else np.zeros(len(df), bool)
    closed = df.assign(conversion_rate=df["conversion_rate"].where(~win))
    add_line(fig, closed, "period", "conversion_rate", name, color, fmt="pct", grain=grain,
             partial=df["partial"].to_numpy(bool) & ~win)
    if win.any():
        keep = win.copy()
        first = int(np.flatnonzero(win)[0])
        if first > 0:
            keep[first - 1] = True  # joins the dotted part to the last closed point
        ys = df["conversion_rate"].to_numpy(float)
        lighter = rgba(color, 0.55)
        fig.add("scatter", x=jsonable(df["period"]), y=np.where(keep, ys, np.nan), mode="lines",
                line={"color": lighter, "width": 2, "dash": "dot"}, hoverinfo="skip", showlegend=False)
        fig.add("scatter", x=jsonable(df["period"]), y=np.where(win, ys, np.nan), mode="markers",
                name=f"{name} (window not yet closed)",
                marker={"color": lighter, "symbol": "circle-open", "size": 8, "line": {"width": 2}},
                customdata=np.stack([df["open_entries"].to_numpy(float), df["entries"].to_numpy(float)], -1),
                hovertemplate=f"{name}: %{{y:.1%}}, window not yet closed: %{{customdata[0]:,.0f}} of "
                              "%{customdata[1]:,.0f} entries may still convert<extra></extra>")
    elif open_total:
        fig.annotate(text=f"Left out: {count(int(open_total), 'entry')} whose window is not yet closed",
                     showarrow=False, x=1, y=1, xref="paper", yref="paper", xanchor="right", yanchor="bottom",
                     font={"size": 11, "color": muted(theme)})
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".1%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df)
