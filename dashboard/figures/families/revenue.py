"""Revenue figures: revenue and orders, ARPU/ARPPU, conversion (also by device), failed payments,
the Pareto of revenue per user and revenue by currency sent; money names the reporting currency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...definitions import period_label
from ...theme import SERIES, category_color, muted, series_color
from ..core import (
    Fig, add_bars, add_line, attach_csv, base, base2, empty, is_empty, label_margin, rgba, shade_partial, time_axis,
    titled, unit_suffix,
)


def revenue_orders(df: pd.DataFrame | None, grain: str = "day", theme: str = "light", currency: str = "") -> Fig:
    """Revenue bars (in `currency`, the reporting currency) with orders and buyers as lines on a second axis."""
    if is_empty(df, ["revenue", "orders"]):
        return empty(theme=theme)
    fig = base2(theme, margin={"l": 68, "r": 68})
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "revenue", "Revenue", series_color("revenue"), fmt="money", partial=part,
             unit=currency)
    add_line(fig, df, "period", "orders", "Orders", series_color("orders"), grain=grain, partial=part,
             secondary_y=True)
    add_line(fig, df, "period", "buyers", "Buyers", series_color("buyers"), grain=grain, partial=part,
             secondary_y=True)
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s", title={"text": titled("revenue", currency)})
    fig.axis("yaxis2", title={"text": "orders / buyers"})
    return attach_csv(fig, df, ["period", "revenue", "orders", "buyers", "partial"])


def arpu(df: pd.DataFrame | None, grain: str = "day", theme: str = "light", currency: str = "") -> Fig:
    """ARPU and ARPPU over time (in `currency`)."""
    if is_empty(df, ["arpu", "arppu"]):
        return empty(theme=theme)
    fig = base(theme)
    part = df["partial"].to_numpy(bool)
    add_line(fig, df, "period", "arppu", "ARPPU", series_color("arppu"), fmt="money", grain=grain, partial=part,
             unit=currency)
    add_line(fig, df, "period", "arpu", "ARPU", series_color("arpu"), fmt="money", grain=grain, partial=part,
             unit=currency)
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", rangemode="tozero", title={"text": titled("per user", currency)})
    return attach_csv(fig, df, ["period", "arpu", "arppu", "partial"])


def conversion(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Conversion rate (buyers / active users) over time."""
    if is_empty(df, ["conversion_rate"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = period_label("conversion_rate", grain)
    add_line(fig, df, "period", "conversion_rate", name, series_color("conversion_rate"), fmt="pct",
             grain=grain, partial=df["partial"].to_numpy(bool))
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".1%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df, ["period", "buyers", "active", "conversion_rate", "partial"])


def conversion_by_device(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Conversion rate per device over time (one colour per device)."""
    if df is None or not len(df) or not np.isfinite(df["conversion_rate"].to_numpy(float)).any():
        return empty(theme=theme)
    fig = base(theme)
    for i, (dev, g) in enumerate(df.groupby("device", sort=True)):
        add_line(fig, g.reset_index(drop=True), "period", "conversion_rate", str(dev),
                 category_color("device", str(dev), i), fmt="pct", grain=grain, partial=g["partial"].to_numpy(bool))
    shade_partial(fig, df.drop_duplicates("period"), grain)
    time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".1%", rangemode="tozero", title={"text": period_label("conversion_rate", grain)})
    return attach_csv(fig, df, ["period", "device", "active", "buyers", "conversion_rate", "partial"])


def failed_payments(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Failed payments per period (not available under user filters)."""
    if df is None or not len(df) or df["failed_payments"].isna().all():
        return empty("Failed payments are not split by user attributes: clear the country/device/gender/age "
                     "filters", theme)
    if is_empty(df, ["failed_payments"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    add_bars(fig, df, "period", "failed_payments", "Failed payments", series_color("failed_payments"),
             partial=df["partial"].to_numpy(bool))
    shade_partial(fig, df, grain)
    time_axis(fig, grain, df["period"])
    return attach_csv(fig, df, ["period", "failed_payments", "partial"])


def pareto(df: pd.DataFrame | None, theme: str = "light", currency: str = "") -> Fig:
    """Cumulative share of revenue (in `currency`) against the share of paying users (ranked by revenue)."""
    if df is None or not len(df):
        return empty(theme=theme)
    step = max(1, len(df) // 200)
    d = df.iloc[::step]
    if d.index[-1] != df.index[-1]:
        d = pd.concat([d, df.iloc[[-1]]])
    x = np.r_[0.0, d["user_share"].to_numpy(float)]
    y = np.r_[0.0, d["revenue_share"].to_numpy(float)]
    fig = base(theme, hovermode="closest", showlegend=False, margin={"l": 64, "r": 24, "t": 16})
    fig.add("scatter", x=x, y=y, mode="lines", name="Revenue share", fill="tozeroy",
            line={"color": series_color("revenue"), "width": 2}, fillcolor=rgba(SERIES["revenue"], .15),
            hovertemplate="Top %{x:.1%} of paying users: %{y:.1%} of revenue<extra></extra>")
    fig.add("scatter", x=[0, 1], y=[0, 1], mode="lines", name="Equal share", hoverinfo="skip",
            line={"color": muted(theme), "dash": "dot", "width": 1})
    for t in (0.01, 0.1, 0.2):
        k = max(1, int(np.ceil(t * len(df))))
        share = float(df["revenue_share"].iloc[k - 1])
        fig.add("scatter", x=[t], y=[share], mode="markers+text", text=[f"top {t:.0%}: {share:.0%}"],
                textposition="middle right", marker={"color": series_color("revenue"), "size": 8},
                hovertemplate=f"Top {t:.0%} of paying users: {share:.1%} of revenue<extra></extra>")
    fig.axis("xaxis", tickformat=".0%", title={"text": "share of paying users (ranked by revenue)"}, range=[0, 1])
    fig.axis("yaxis", tickformat=".0%", title={"text": "share of revenue" + (f" in {currency}" if currency else "")},
             range=[0, 1.02])
    return attach_csv(fig, df, ["rank", "user_id", "revenue", "user_share", "revenue_share"])


def revenue_by_currency(df: pd.DataFrame | None, theme: str = "light", currency: str = "") -> Fig:
    """Revenue per currency as sent, in the reporting currency (`currency`); a currency without a rate
    has no bar and is named as such; hover gives orders and the original amount."""
    if df is None or not len(df):
        return empty(theme=theme)
    d = df.sort_values(["revenue", "orders"], ascending=True, na_position="first")
    labels = [f"{c} (no rate)" if not ok else str(c) for c, ok in zip(d["currency"], d["converted"])]
    fig = base(theme, hovermode="closest", showlegend=False,
               margin={"l": label_margin(labels), "r": 24, "t": 16})
    custom = np.stack([d["orders"].to_numpy(float), d["amount"].to_numpy(float),
                       d["unconverted_orders"].to_numpy(float)], -1)
    fig.add("bar", orientation="h", y=labels, x=d["revenue"].fillna(0).to_numpy(float),
            marker={"color": [series_color("revenue") if ok else muted(theme) for ok in d["converted"]]},
            customdata=custom,
            hovertemplate=(f"%{{y}}: %{{x:,.2f}}{unit_suffix(currency)} from %{{customdata[0]:,.0f}} orders "
                           "(%{customdata[1]:,.2f} in the currency sent; %{customdata[2]:,.0f} orders without "
                           "a rate, left out)<extra></extra>"))
    fig.axis("xaxis", tickformat="~s", title={"text": titled("revenue", currency)})
    fig.axis("yaxis", title={"text": "currency sent"})
    return attach_csv(fig, df, ["currency", "orders", "amount", "revenue", "share", "converted",
                                "unconverted_orders"])
