"""Retention figures: the cohort heatmap and the average retention curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...theme import VIOLET, sequential, series_color
from ..core import Fig, attach_csv, base, empty, label_margin


def retention_heatmap(df: pd.DataFrame | None, measure: str = "rate", unbounded: bool = False,
                      cohort: str = "day", theme: str = "light") -> Fig:
    """Cohort triangle: cohorts down, day/week N across, rate or count in each cell."""
    if df is None or not len(df):
        return empty(theme=theme, height=420)
    col = ("rate_unbounded" if unbounded else "rate") if measure == "rate" else \
        ("retained_unbounded" if unbounded else "retained")
    if df[col].isna().all():
        return empty("'On or after day N' exists for daily cohorts only: choose 'On day N'", theme, 420)
    piv = df.pivot_table(index="cohort", columns="n", values=col, aggfunc="sum")
    sizes = df.groupby("cohort")["cohort_size"].first().reindex(piv.index)
    prefix = "" if cohort == "day" else "wk "
    labels = [f"{prefix}{c:%d %b %Y} ({int(s):,})" for c, s in zip(piv.index, sizes)]
    word = "D" if cohort == "day" else "W"
    z = piv.to_numpy(dtype=float)
    is_rate = measure == "rate"
    height = max(360, min(900, 18 * len(labels) + 90))
    fig = base(theme, height=height, hovermode="closest", margin={"l": label_margin(labels, per_char=6.2), "t": 30,
                                                                  "b": 8})
    fig.add("heatmap", z=z, x=[f"{word}{n}" for n in piv.columns], y=labels,
            colorscale=sequential(VIOLET, theme), zmin=0, zmax=1 if is_rate else None,
            colorbar={"thickness": 10, "tickformat": ".0%" if is_rate else "~s"},
            texttemplate=("%{z:.0%}" if is_rate else "%{z:,.0f}") if len(labels) <= 45 else None,
            textfont={"size": 9}, hoverongaps=False,
            hovertemplate="Cohort %{y}<br>%{x}: " + ("%{z:.1%}" if is_rate else "%{z:,.0f}") + "<extra></extra>")
    fig.axis("yaxis", autorange="reversed", type="category")
    fig.axis("xaxis", side="top", type="category", tickangle=0)
    return attach_csv(fig, df)


def retention_curve(curve: pd.DataFrame | None, cohort: str = "day", unbounded: bool = False,
                    theme: str = "light") -> Fig:
    """Average retention by day/week N, weighted by cohort size."""
    if curve is None or not len(curve) or not np.isfinite(curve["rate"].to_numpy(float)).any():
        return empty(theme=theme)
    word = "Day" if cohort == "day" else "Week"
    fig = base(theme, hovermode="x unified", showlegend=False, margin={"t": 16})
    fig.add("scatter", x=curve["n"], y=curve["rate"], mode="lines+markers",
            name="on or after N" if unbounded else "on N",
            line={"color": series_color("retention_unbounded" if unbounded else "retention"), "width": 2},
            customdata=curve["cohorts"], hovertemplate=word + " %{x}: %{y:.1%} (%{customdata} cohorts)<extra></extra>")
    fig.axis("xaxis", title={"text": f"{word} N"}, dtick=1 if cohort == "week" else 5)
    fig.axis("yaxis", tickformat=".0%", rangemode="tozero")
    return attach_csv(fig, curve)
