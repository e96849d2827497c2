"""Demographics figures: users by one dimension and the gender x age group heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...theme import BLUE, sequential, series_color
from ..core import Fig, attach_csv, base, empty, label_margin


AGE_ORDER = ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"]


MEASURES = {"users": "Users", "active_users": "Active users", "new_users": "New users"}


def by_dimension(df: pd.DataFrame | None, dim: str, theme: str = "light", top: int | None = None,
                 horizontal: bool = False) -> Fig:
    """Users, active users and new users by one dimension (grouped bars)."""
    if df is None or not len(df):
        return empty(theme=theme)
    g = df.groupby(dim, as_index=False)[list(MEASURES)].sum()
    if dim == "age_group":
        g["_o"] = g[dim].map({a: i for i, a in enumerate(AGE_ORDER)}).fillna(99)
        g = g.sort_values("_o").drop(columns="_o")
    else:
        g = g.sort_values("users", ascending=False)
    if top:
        g = g.head(top)
    colors = {"users": "#94a3b8", "active_users": series_color("active_users"),
              "new_users": series_color("new_users")}
    if horizontal:
        g = g.iloc[::-1]
        fig = base(theme, height=max(320, 26 * len(g) + 70), barmode="group", hovermode="y unified",
                   margin={"l": label_margin(g[dim])})
        for m, label in MEASURES.items():
            fig.add("bar", y=g[dim], x=g[m], name=label, orientation="h", marker={"color": colors[m]},
                    hovertemplate=f"{label}: %{{x:,.0f}}<extra></extra>")
        fig.axis("xaxis", tickformat="~s")
        fig.axis("yaxis", type="category")
    else:
        fig = base(theme, barmode="group")
        for m, label in MEASURES.items():
            fig.add("bar", x=g[dim], y=g[m], name=label, marker={"color": colors[m]},
                    hovertemplate=f"{label}: %{{y:,.0f}}<extra></extra>")
        fig.axis("yaxis", tickformat="~s")
        fig.axis("xaxis", type="category")
    return attach_csv(fig, g, [dim] + list(MEASURES))


def demographic_heatmap(df: pd.DataFrame | None, measure: str = "active_users", theme: str = "light") -> Fig:
    """Gender x age group heatmap of a measure."""
    if df is None or not len(df):
        return empty(theme=theme)
    genders = sorted(df["gender"].unique())
    ages = [a for a in AGE_ORDER if a in set(df["age_group"])] + sorted(set(df["age_group"]) - set(AGE_ORDER))
    gi = pd.Index(genders).get_indexer(df["gender"])
    ai = pd.Index(ages).get_indexer(df["age_group"])
    z = np.zeros((len(genders), len(ages)))
    np.add.at(z, (gi, ai), df[measure].to_numpy(dtype=float))
    g = pd.DataFrame(z, index=pd.Index(genders, name="gender"), columns=ages)
    label = MEASURES.get(measure, measure).lower()
    fig = base(theme, hovermode="closest", margin={"l": label_margin(genders), "t": 16})
    fig.add("heatmap", z=g.to_numpy(dtype=float), x=list(g.columns), y=list(g.index),
            colorscale=sequential(BLUE, theme), texttemplate="%{z:,.0f}",
            hovertemplate="%{y}, %{x}: %{z:,.0f} " + label + "<extra></extra>", colorbar={"thickness": 10})
    fig.axis("xaxis", type="category")
    fig.axis("yaxis", type="category")
    out = pd.DataFrame({"gender": np.repeat(genders, len(ages)), "age_group": np.tile(ages, len(genders)),
                        measure: z.ravel()})
    return attach_csv(fig, out)
