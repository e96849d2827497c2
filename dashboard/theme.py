"""Colours and plotly templates: one colour per series on every page, light and dark variants."""

from __future__ import annotations

from functools import lru_cache


BLUE, INDIGO, VIOLET, TEAL, EMERALD = "#3b82f6", "#6366f1", "#8b5cf6", "#14b8a6", "#10b981"
AMBER, ROSE, SLATE, CYAN, ORANGE, PINK, LIME = ("#f59e0b", "#f43f5e", "#64748b", "#06b6d4", "#f97316",
                                                "#ec4899", "#84cc16")

# A metric keeps its colour wherever it is drawn.
SERIES: dict[str, str] = {
    "dau": BLUE, "wau": VIOLET, "mau": TEAL, "active": BLUE, "avg_dau": INDIGO, "stickiness": AMBER,
    "new_users": EMERALD, "new_active_users": EMERALD, "existing_active_users": BLUE, "new_ratio": ORANGE,
    "active_users": BLUE,
    "new": EMERALD, "returning": BLUE, "resurrecting": AMBER, "dormant": ROSE,
    "points_earned": EMERALD, "points_redeemed": ROSE, "outstanding_points": VIOLET, "participation_rate": AMBER,
    "balance": VIOLET,
    "revenue": EMERALD, "orders": BLUE, "buyers": VIOLET, "arpu": AMBER, "arppu": ORANGE,
    "conversion_rate": CYAN, "failed_payments": ROSE,
    "sessions": BLUE, "avg_session_seconds": VIOLET, "avg_time_per_user_seconds": TEAL, "sessions_per_user": INDIGO,
    "entries": BLUE, "completions": EMERALD, "events": BLUE, "views": TEAL, "users": BLUE,
    "retention": VIOLET, "retention_unbounded": TEAL, "attempts": BLUE, "passes": EMERALD, "pass_rate": AMBER,
    "learners": BLUE, "completion_rate": EMERALD, "lines": ROSE, "seconds": INDIGO,
}
CATEGORY: dict[str, dict[str, str]] = {
    "gender": {"female": PINK, "male": BLUE, "other": AMBER, "unknown": SLATE},
    "device": {"mobile": BLUE, "web": TEAL, "tablet": AMBER, "desktop": VIOLET, "unknown": SLATE},
    "segment": {"new": EMERALD, "high_value": VIOLET, "regular": BLUE, "occasional": AMBER, "at_risk": ROSE, "dormant": SLATE,
                "unknown": "#94a3b8"},
    "age_group": {"<18": "#c7d2fe", "18-24": "#a5b4fc", "25-34": "#818cf8", "35-44": INDIGO, "45-54": "#4f46e5",
                  "55-64": "#4338ca", "65+": "#3730a3", "unknown": SLATE},
    "feed": {"events": ROSE, "users": ORANGE},
}
QUALITATIVE = [BLUE, EMERALD, AMBER, VIOLET, ROSE, TEAL, ORANGE, INDIGO, PINK, LIME, CYAN, SLATE]


def series_color(key: str) -> str:
    """Colour of a metric series (blue when it has none of its own)."""
    return SERIES.get(key, BLUE)


def category_color(dimension: str, value: str, index: int = 0) -> str:
    """Colour of a category (a gender, a device, a segment...), stable across pages."""
    known = CATEGORY.get(dimension, {})
    return known.get(value, QUALITATIVE[index % len(QUALITATIVE)])


@lru_cache(maxsize=4)
def template(theme: str = "light") -> dict:
    """A small plotly template (as a dict): transparent backgrounds, theme text and grid colours."""
    dark = theme == "dark"
    grid = "rgba(148,163,184,0.18)" if dark else "rgba(100,116,139,0.15)"
    text = "#dee2e6" if dark else "#212529"
    # no automargin: it makes plotly lay a chart out twice (measured: ~40 % of the drawing time);
    # figures set their margins from what they show instead
    axis = {"gridcolor": grid, "zerolinecolor": grid, "linecolor": grid, "automargin": False, "ticks": "",
            "title": {"standoff": 6}}
    return {"layout": {
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "colorway": QUALITATIVE,
        "font": {"family": 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
                 "size": 12, "color": text},
        "xaxis": axis, "yaxis": axis,
        "hoverlabel": {"bgcolor": "#1d2127" if dark else "#ffffff", "bordercolor": grid,
                       "font": {"size": 12, "color": text}},
        "legend": {"bgcolor": "rgba(0,0,0,0)"},
        "modebar": {"bgcolor": "rgba(0,0,0,0)", "color": "#adb5bd" if dark else "#6c757d",
                    "activecolor": BLUE},
    }}


def sequential(color: str, theme: str = "light") -> list:
    """A plotly colorscale from 'nothing' (blends with the card) to the given colour."""
    h = color.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    if theme == "dark":
        return [[0.0, "rgba(255,255,255,0.04)"], [0.35, f"rgba({r},{g},{b},0.45)"], [1.0, f"rgb({r},{g},{b})"]]
    return [[0.0, "#f8fafc"], [0.35, f"rgba({r},{g},{b},0.45)"], [1.0, f"rgb({r},{g},{b})"]]


def muted(theme: str = "light") -> str:
    """Colour of secondary text in figures."""
    return "#adb5bd" if theme == "dark" else "#6c757d"
