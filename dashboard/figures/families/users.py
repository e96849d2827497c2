"""Users figure: one user's daily activity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...theme import series_color
from ..core import Fig, attach_csv, base, empty, time_axis, unit_suffix


def user_activity(df: pd.DataFrame | None, theme: str = "light", currency: str = "") -> Fig:
    """One user's daily events and sessions (bars) with purchases marked."""
    if df is None or not len(df):
        return empty("No activity in the selected range", theme)
    fig = base(theme, barmode="group")
    fig.add("bar", x=df["date"], y=df["events"], name="Events", marker={"color": series_color("events")},
            hovertemplate="Events: %{y:,.0f}<extra></extra>")
    fig.add("bar", x=df["date"], y=df["sessions"], name="Sessions", marker={"color": series_color("avg_dau")},
            hovertemplate="Sessions: %{y:,.0f}<extra></extra>")
    buys = df[df["purchases"] > 0]
    if len(buys):
        fig.add("scatter", x=buys["date"], y=buys["events"].to_numpy(float) + 0.5, mode="markers", name="Purchase",
                marker={"symbol": "star", "size": 10, "color": series_color("revenue")},
                customdata=np.stack([buys["purchases"].to_numpy(float), buys["revenue"].to_numpy(float)], -1),
                hovertemplate="Purchases: %{customdata[0]:,.0f} (revenue %{customdata[1]:,.2f}"
                              f"{unit_suffix(currency)})<extra></extra>")
    time_axis(fig, "day")
    return attach_csv(fig, df)
