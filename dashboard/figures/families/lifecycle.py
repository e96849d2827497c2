"""Lifecycle figure: new, returning, resurrecting (stacked) and dormant (below zero) per period."""

from __future__ import annotations

import pandas as pd

from ...theme import series_color
from ..core import Fig, add_bars, attach_csv, base, empty, is_empty, shade_partial, time_axis


def lifecycle(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Lifecycle bars: new, returning, resurrecting stacked up; dormant below zero."""
    if is_empty(df, ["new", "returning", "resurrecting", "dormant"]):
        return empty(theme=theme)
    fig = base(theme, barmode="relative")
    part = df["partial"].to_numpy(bool) if "partial" in df.columns else None
    for col, name in (("returning", "Returning"), ("new", "New"), ("resurrecting", "Resurrecting")):
        add_bars(fig, df, "period", col, name, series_color(col), partial=part)
    add_bars(fig, df, "period", "dormant", "Dormant", series_color("dormant"), partial=part, sign=-1)
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s", zeroline=True, zerolinewidth=1.5)
    return attach_csv(fig, df, ["period", "new", "returning", "resurrecting", "dormant", "partial"])
