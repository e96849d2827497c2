"""Segments figures: segment sizes, active users per segment over time, the cluster scatter."""

from __future__ import annotations

import pandas as pd

from ...theme import category_color
from ...wording import count
from ..core import Fig, attach_csv, base, empty, ranked_bars, shade_partial, time_axis


def segment_sizes(df: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Users per segment with their share."""
    if df is None or not len(df):
        return empty(theme=theme)
    d, fig = ranked_bars(df, "segment", theme, row_px=34)
    fig.add("bar", y=d["segment"], x=d["users"], orientation="h",
            marker={"color": [category_color("segment", s, i) for i, s in enumerate(d["segment"])]},
            customdata=d["share"], texttemplate="%{x:,.0f} (%{customdata:.0%})", textposition="auto",
            hovertext=[count(n, "user") for n in d["users"]],
            hovertemplate="%{y}: %{hovertext} (%{customdata:.1%})<extra></extra>")
    fig.axis("yaxis", type="category")
    fig.axis("xaxis", tickformat="~s")
    return attach_csv(fig, df)


def segment_trend(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Active users per period by (current) segment, stacked areas."""
    if df is None or not len(df) or not df["active"].sum():
        return empty(theme=theme)
    fig = base(theme)
    for i, (seg, g) in enumerate(df.groupby("segment", sort=True)):
        c = category_color("segment", str(seg), i)
        fig.add("scatter", x=g["period"], y=g["active"], name=str(seg), mode="lines", stackgroup="one",
                line={"color": c, "width": 1}, hovertemplate=f"{seg}: %{{y:,.0f}}<extra></extra>")
    shade_partial(fig, df.drop_duplicates("period"), grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df)


def cluster_scatter(points: pd.DataFrame | None, profiles: pd.DataFrame | None = None,
                    theme: str = "light") -> Fig:
    """Users on the first two principal axes coloured by cluster, labelled at each cluster's centre."""
    if points is None or not len(points):
        return empty("No 2-D projection (users.cluster_pc1/pc2) for this filter", theme, 420)
    fig = base(theme, hovermode="closest", margin={"l": 60, "b": 52})
    for i, (cl, g) in enumerate(points.groupby("cluster", sort=True)):
        label = str(g["label"].iloc[0])
        color = category_color("cluster", label, i)
        fig.add("scatter", x=g["cluster_pc1"], y=g["cluster_pc2"], mode="markers", name=f"{cl}: {label}",
                marker={"color": color, "size": 5, "opacity": 0.6}, customdata=g["user_id"],
                hovertemplate="%{customdata}<br>PC1 %{x:.2f}, PC2 %{y:.2f}<extra>" + label + "</extra>")
        fig.annotate(x=float(g["cluster_pc1"].median()), y=float(g["cluster_pc2"].median()), text=label,
                     showarrow=False, font={"size": 12, "color": color}, borderpad=3,
                     bgcolor="rgba(255,255,255,0.75)" if theme != "dark" else "rgba(33,37,41,0.75)")
    fig.axis("xaxis", title={"text": "principal axis 1"}, zeroline=False)
    fig.axis("yaxis", title={"text": "principal axis 2"}, zeroline=False)
    return attach_csv(fig, points)
