"""Figures of the pipeline health page: quarantined lines and step durations."""

from __future__ import annotations

import pandas as pd

from ..theme import category_color, series_color
from .core import Fig, attach_csv, base, empty, label_margin


def quarantine(df: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Quarantined lines by reason, one colour per feed."""
    if df is None or not len(df):
        return empty("No quarantined lines", theme)
    d = df.sort_values("lines")
    fig = base(theme, hovermode="closest", height=max(260, 26 * d["reason"].nunique() + 70), barmode="stack",
               margin={"l": label_margin(d["reason"]), "b": 32})
    for i, (feed, g) in enumerate(d.groupby("feed", sort=True)):
        fig.add("bar", y=g["reason"], x=g["lines"], orientation="h", name=str(feed),
                marker={"color": category_color("feed", str(feed), i)},
                hovertemplate=f"{feed} · %{{y}}: %{{x:,.0f}} lines<extra></extra>")
    fig.axis("yaxis", type="category", categoryorder="total ascending")
    return attach_csv(fig, df)


def durations(df: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Seconds per step of the latest pipeline run."""
    if df is None or not len(df):
        return empty("No step durations recorded", theme, 260)
    fig = base(theme, hovermode="closest", height=260, showlegend=False, margin={"l": 64, "t": 16, "b": 32})
    fig.add("bar", x=df["step"], y=df["seconds"], marker={"color": series_color("seconds")},
            hovertemplate="%{x}: %{y:,.1f} s<extra></extra>")
    fig.axis("yaxis", title={"text": "seconds"})
    fig.axis("xaxis", type="category")
    return attach_csv(fig, df)
