"""Content figures: top events and pages, hourly heatmaps, quizzes (paged) and course completion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...theme import ORANGE, sequential, series_color
from ..core import Fig, attach_csv, base, base2, empty, ranked_bars


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def top_bar(df: pd.DataFrame | None, key: str, value: str, label: str, color_key: str,
            theme: str = "light") -> Fig:
    """A horizontal bar chart of the top items (events, pages)."""
    if df is None or not len(df):
        return empty(theme=theme)
    d, fig = ranked_bars(df, key, theme, row_px=24, min_height=320)
    has_users = "users" in d.columns
    fig.add("bar", y=d[key], x=d[value], orientation="h", marker={"color": series_color(color_key)},
            customdata=d["users"] if has_users else None,
            hovertemplate="%{y}: %{x:,.0f} " + label + (" (%{customdata:,.0f} user-days)" if has_users else "")
                          + "<extra></extra>")
    fig.axis("xaxis", tickformat="~s")
    fig.axis("yaxis", type="category")
    return attach_csv(fig, df)


def hourly_heatmap(grid: pd.DataFrame | None, label: str, theme: str = "light") -> Fig:
    """Weekday x hour heatmap of an event's counts."""
    if grid is None or not len(grid) or not grid["events"].sum():
        return empty(theme=theme)
    z = grid.pivot_table(index="day_of_week", columns="hour", values="events", aggfunc="sum").reindex(
        index=range(1, 8), columns=range(24)).fillna(0)
    fig = base(theme, hovermode="closest", margin={"l": 44, "t": 12, "b": 44})
    fig.add("heatmap", z=z.to_numpy(float), x=list(range(24)), y=WEEKDAYS,
            colorscale=sequential(ORANGE, theme), colorbar={"thickness": 10},
            hovertemplate="%{y} %{x}:00–%{x}:59: %{z:,.0f} " + label + "<extra></extra>")
    fig.axis("yaxis", autorange="reversed", type="category")
    fig.axis("xaxis", title={"text": "hour of day"}, dtick=2, tickangle=0)
    return attach_csv(fig, grid)


QUIZ_PAGE_SIZE = 15


def quiz_pages(df: pd.DataFrame | None, size: int = QUIZ_PAGE_SIZE) -> int:
    """How many pages of `size` quizzes the quiz chart has (at least 1)."""
    return max(1, -(-(0 if df is None else len(df)) // size))


def quizzes(df: pd.DataFrame | None, theme: str = "light", page: int = 1, size: int = QUIZ_PAGE_SIZE) -> Fig:
    """Attempts, participants and passes (bars) with the pass rate (line) of one page of quizzes: the most
    attempted first (page 1 = the top `size`); the title says which ranks are shown, the CSV has every quiz."""
    if df is None or not len(df):
        return empty(theme=theme)
    every = df
    ranked = df.sort_values(["attempts", "quiz_id"], ascending=[False, True], kind="stable")
    page = min(max(int(page or 1), 1), quiz_pages(df, size))
    df = ranked.iloc[(page - 1) * size: page * size]
    first, last = (page - 1) * size + 1, (page - 1) * size + len(df)
    title = (f"Quizzes {first}–{last} of {len(every):,} by attempts" if len(every) > size
             else f"All {len(every):,} quizzes by attempts" if len(every) > 1 else "1 quiz")
    fig = base2(theme, barmode="group", margin={"t": 56, "r": 56},
                title={"text": title, "font": {"size": 12}, "x": 0, "xanchor": "left", "y": 0.98})
    fig.add("bar", x=df["quiz_id"], y=df["attempts"], name="Attempts", marker={"color": series_color("attempts")},
            hovertemplate="Attempts: %{y:,.0f}<extra></extra>")
    fig.add("bar", x=df["quiz_id"], y=df["participants"], name="Participants (user-days)",
            marker={"color": series_color("avg_dau"), "opacity": 0.75},
            hovertemplate="Participants: %{y:,.0f}<extra></extra>")
    fig.add("bar", x=df["quiz_id"], y=df["passes"], name="Passes", marker={"color": series_color("passes")},
            hovertemplate="Passes: %{y:,.0f}<extra></extra>")
    fig.add("scatter", x=df["quiz_id"], y=df["pass_rate"], name="Pass rate", mode="lines+markers",
            line={"color": series_color("pass_rate"), "width": 2}, yaxis="y2",
            hovertemplate="Pass rate: %{y:.1%}<extra></extra>")
    fig.axis("yaxis2", tickformat=".0%", range=[0, 1.05])
    fig.axis("xaxis", type="category")
    return attach_csv(fig, ranked)


def course_completion(df: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Completion rate per course (bars), learners in the hover."""
    if df is None or not len(df):
        return empty(theme=theme)
    d, fig = ranked_bars(df, "course_id", theme)
    fig.add("bar", y=d["course_id"], x=d["completion_rate"], orientation="h",
            marker={"color": series_color("completion_rate")},
            customdata=np.stack([d["completions"].to_numpy(float), d["learners"].to_numpy(float)], -1),
            texttemplate="%{x:.0%}", textposition="auto",
            hovertemplate="%{y}: %{x:.1%} (%{customdata[0]:,.0f} of %{customdata[1]:,.0f} learners)<extra></extra>")
    fig.axis("xaxis", tickformat=".0%", range=[0, 1])
    fig.axis("yaxis", type="category")
    return attach_csv(fig, df)
