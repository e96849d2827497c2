"""Pure DataFrame -> plotly figure functions (no lake access, no Dash).

Figures are built as plain plotly JSON (the small `Fig` class) rather than
plotly.graph_objects: property validation and deep copies in graph_objects cost
tens of milliseconds per figure, too much for < 100 ms callbacks. Every figure
carries the table behind it (`Fig.csv`, sent as layout.meta.csv) so the page can
offer a CSV download of exactly what is drawn, and uses hover templates with
exact values. Partial periods (a week or month not fully covered) are drawn
dashed / hatched and shaded.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd

from .theme import BLUE, ORANGE, SERIES, VIOLET, category_color, muted, sequential, series_color, template
from .definitions import LABELS, period_label
from .wording import count

FMT = {"int": ",.0f", "pct": ".1%", "money": ",.2f", "float": ",.2f", "sec": ",.0f"}
NO_DATA = "No data for this filter"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
AGE_ORDER = ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"]
MEASURES = {"users": "Users", "active_users": "Active users", "new_users": "New users"}


# --------------------------------------------------------------------------- JSON values

def _dates(x) -> list:
    d = pd.DatetimeIndex(x)
    out = d.strftime("%Y-%m-%d") if (d.dropna() == d.dropna().normalize()).all() else d.strftime("%Y-%m-%dT%H:%M:%S")
    return [None if isinstance(v, float) or v is None or v == "NaT" else v for v in out]


def jsonable(x):
    """Arrays, Series and scalars -> JSON-ready Python values (dates as ISO strings, NaN as null)."""
    if isinstance(x, (pd.Series, pd.Index)):
        if pd.api.types.is_datetime64_any_dtype(x.dtype):
            return _dates(x)
        x = x.to_numpy()
    if isinstance(x, np.ndarray):
        k = x.dtype.kind
        if k == "M":
            return _dates(x)
        if k == "f":
            # 6 decimals keep every shown value exact (rates to 0.0001 %) and halve the JSON
            o = np.round(x, 6).astype(object)
            o[~np.isfinite(x)] = None
            return o.tolist()
        if k in "iub":
            return x.tolist()
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (pd.Timestamp, datetime)):
        return x.date().isoformat() if (x.hour, x.minute, x.second) == (0, 0, 0) else x.isoformat()
    if isinstance(x, date):
        return x.isoformat()
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is pd.NaT:
        return None
    return x


def _merge(dst: dict, src: dict) -> dict:
    """Deep-merge src into dst (nested dicts merge, everything else replaces)."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            dst[k] = _merge(dict(dst[k]), v)
        else:
            dst[k] = v
    return dst


ARRAY_KEYS = ("x", "y", "z", "text", "labels", "values", "customdata", "width", "base")


class Fig:
    """A plotly figure as plain JSON: `data` (list of trace dicts) and `layout` (dict).

    Dash serialises it through to_plotly_json(); `csv` is the table behind the chart.
    """

    def __init__(self, theme: str = "light", height: int | None = None, **layout):
        self.theme = theme
        self.data: list[dict] = []
        self.layout: dict = {
            "template": template(theme), "margin": {"l": 52, "r": 16, "t": 36, "b": 44},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
            "hovermode": "x unified",
        }
        if height:
            self.layout["height"] = height
        _merge(self.layout, layout)
        self.csv: dict | None = None

    def add(self, type: str, **trace) -> "Fig":  # noqa: A002 - plotly's own key
        """Append a trace; array-like values become JSON lists."""
        t = {"type": type}
        for k, v in trace.items():
            if v is None:
                continue
            t[k] = jsonable(v) if (k in ARRAY_KEYS or isinstance(v, (np.ndarray, pd.Series, pd.Index))) else v
        self.data.append(t)
        return self

    def update(self, **layout) -> "Fig":
        """Deep-merge layout settings."""
        _merge(self.layout, layout)
        return self

    def axis(self, name: str, **kw) -> "Fig":
        """Deep-merge settings into one axis (xaxis, yaxis, yaxis2)."""
        self.layout[name] = _merge(dict(self.layout.get(name, {})), kw)
        return self

    def annotate(self, **kw) -> "Fig":
        """Add an annotation."""
        self.layout.setdefault("annotations", []).append(jsonable_dict(kw))
        return self

    def vrect(self, x0, x1, label: str | None = None) -> "Fig":
        """Shade [x0, x1) across the plot (with a small label at its top left)."""
        self.layout.setdefault("shapes", []).append({
            "type": "rect", "xref": "x", "yref": "paper", "x0": jsonable(x0), "x1": jsonable(x1), "y0": 0, "y1": 1,
            "fillcolor": "rgba(148,163,184,0.15)", "line": {"width": 0}, "layer": "below"})
        if label:
            self.annotate(x=x0, y=1, xref="x", yref="paper", text=label, showarrow=False, xanchor="left",
                          yanchor="top", font={"size": 10, "color": muted(self.theme)})
        return self

    def to_plotly_json(self) -> dict:
        """The figure as Dash sends it (the CSV table rides in layout.meta)."""
        layout = self.layout
        if self.csv is not None:
            layout = dict(layout)
            layout["meta"] = {**(layout.get("meta") or {}), "csv": self.csv}
        return {"data": self.data, "layout": layout}

    to_dict = to_plotly_json


def jsonable_dict(d: dict) -> dict:
    return {k: (jsonable_dict(v) if isinstance(v, dict) else jsonable(v)) for k, v in d.items()}


def csv_of(fig) -> dict | None:
    """The {"columns", "cols"} table a figure carries (what its CSV button downloads)."""
    if isinstance(fig, Fig):
        return fig.csv
    return ((fig or {}).get("layout", {}).get("meta") or {}).get("csv")


def attach_csv(fig: Fig, df: pd.DataFrame | None, columns: list[str] | None = None,
               rename: dict[str, str] | None = None) -> Fig:
    """Attach the table behind a figure, column-oriented: {"columns": names, "cols": [values...]}."""
    if df is None:
        return fig
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    fig.csv = {"columns": [(rename or {}).get(c, c) for c in cols], "cols": [jsonable(df[c]) for c in cols]}
    return fig


def base(theme: str = "light", height: int | None = None, **layout) -> Fig:
    """An empty figure with the dashboard's template (fills its card unless a height is given)."""
    return Fig(theme, height, **layout)


def label_margin(labels, minimum: int = 40, per_char: float = 6.6) -> int:
    """Left margin that fits the longest category label (automargin is off for speed)."""
    longest = max((len(str(x)) for x in labels), default=0)
    return int(max(minimum, 16 + per_char * longest))


def base2(theme: str = "light", height: int | None = None, **layout) -> Fig:
    """A figure with a second y axis on the right (traces opt in with secondary_y=True)."""
    layout.setdefault("margin", {"r": 56})
    fig = Fig(theme, height, **layout)
    fig.axis("yaxis2", overlaying="y", side="right", showgrid=False, rangemode="tozero", tickmode="auto")
    return fig


def empty(message: str = NO_DATA, theme: str = "light", height: int | None = None) -> Fig:
    """A friendly empty state instead of a blank or broken chart."""
    fig = Fig(theme, height, hovermode=False, xaxis={"visible": False}, yaxis={"visible": False},
              meta={"empty": True}, margin={"l": 8, "r": 8, "t": 8, "b": 8})
    fig.annotate(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                 font={"size": 14, "color": muted(theme)})
    fig.csv = {"columns": ["message"], "cols": [[message]]}
    return fig


def missing(table: str, theme: str = "light", height: int | None = None) -> Fig:
    """Empty state for a gold table the pipeline has not produced yet."""
    return empty(f"gold.{table} does not exist yet — run the pipeline", theme, height)


def is_empty(df: pd.DataFrame | None, cols: list[str] | None = None) -> bool:
    """True when there is nothing to draw (no rows, or only nulls/zeros in the value columns)."""
    if df is None or not len(df):
        return True
    if cols:
        vals = df[[c for c in cols if c in df.columns]].to_numpy(dtype=float)
        return not np.isfinite(vals).any() or not np.nansum(np.abs(vals)) > 0
    return False


def _hover(fmt: str) -> str:
    return FMT.get(fmt, fmt)


def _unit(unit: str) -> str:
    """' USD' after a hover value (nothing without a unit)."""
    return f" {unit}" if unit else ""


def _titled(text: str, unit: str) -> str:
    """An axis title with its unit: 'revenue (USD)'."""
    return f"{text} ({unit})" if unit else text


def _alpha(hex_color: str, a: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return f"rgba({r},{g},{b},{a})"


# labels per axis: enough for the narrowest (one-third width) card; every period keeps its tick
MAX_PERIOD_LABELS = {"week": 5, "month": 6}


def period_ticks(periods, grain: str) -> tuple[list[str], list[str]]:
    """Tick positions and labels of a week or month axis: one tick at each period's first day (where its
    bar or point sits), labelled as a month ("Oct<br>2025", "Nov") or an ISO week with its Monday
    ("2025-W49<br>1 Dec", "W50<br>8 Dec"); the year is shown on the first label and where it changes.
    With many periods only every k-th tick keeps its label (the tick marks stay, one per period)."""
    p = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(periods).dropna())).sort_values()
    step = max(1, math.ceil(len(p) / MAX_PERIOD_LABELS.get(grain, 12)))
    vals, text, last_year = [], [], None
    for i, t in enumerate(p):
        vals.append(t.strftime("%Y-%m-%d"))
        if i % step:
            text.append("")
            continue
        if grain == "month":
            text.append(f"{t:%b}" + (f"<br>{t.year}" if t.year != last_year else ""))
            last_year = t.year
        else:
            iso = t.isocalendar()
            week = f"{iso.year}-W{iso.week:02d}" if iso.year != last_year else f"W{iso.week:02d}"
            text.append(f"{week}<br>{t.day} {t:%b}")
            last_year = iso.year
    return vals, text


def _time_axis(fig: Fig, grain: str, periods=None) -> None:
    """Hover format of the time axis; week and month axes tick each period (see period_ticks)."""
    fig.axis("xaxis", hoverformat="%b %Y" if grain == "month" else ("Week of %d %b %Y" if grain == "week"
                                                                     else "%a %d %b %Y"))
    if grain in ("week", "month") and periods is not None and len(periods):
        vals, text = period_ticks(periods, grain)
        fig.axis("xaxis", type="date", tickmode="array", tickvals=vals, ticktext=text, ticks="outside",
                 ticklen=4, tickangle=0)


def _shade_partial(fig: Fig, df: pd.DataFrame, grain: str) -> None:
    """Shade partial periods and label them, so nobody compares them with full ones.

    The band is centred on the period's bar or point (drawn at its first day) and as wide as the period.
    """
    if "partial" not in df.columns or grain == "day" or not df["partial"].any():
        return
    periods = pd.DatetimeIndex(df["period"])
    for i in np.flatnonzero(df["partial"].to_numpy(dtype=bool)):
        start = periods[i]
        length = (start + (pd.DateOffset(months=1) if grain == "month" else pd.Timedelta(days=7))) - start
        fig.vrect(start - length / 2, start + length / 2, "partial")


def add_line(fig: Fig, df: pd.DataFrame, x: str, y: str, name: str, color: str, fmt: str = "int",
             grain: str = "day", partial: np.ndarray | None = None, secondary_y: bool = False,
             dash: str | None = None, fill: str | None = None, unit: str = "") -> None:
    """A line whose partial points are drawn dotted with open markers (hover says 'partial')."""
    xs = jsonable(df[x])
    ys = df[y].to_numpy(dtype=float)
    part = np.zeros(len(ys), bool) if partial is None else np.asarray(partial, bool)
    axis = {"yaxis": "y2"} if secondary_y else {}
    fig.add("scatter", x=xs, y=np.where(part, np.nan, ys), name=name, mode="lines", legendgroup=name,
            line={"color": color, "width": 2, **({"dash": dash} if dash else {})}, fill=fill,
            fillcolor=_alpha(color, 0.15) if fill else None, connectgaps=False,
            hovertemplate=f"{name}: %{{y:{_hover(fmt)}}}{_unit(unit)}<extra></extra>", **axis)
    if part.any():
        idx = np.flatnonzero(part)
        keep = np.zeros(len(ys), bool)
        keep[idx] = True
        keep[np.clip(idx - 1, 0, None)] = True
        keep[np.clip(idx + 1, None, len(ys) - 1)] = True
        fig.add("scatter", x=xs, y=np.where(keep, ys, np.nan), name=name, mode="lines", showlegend=False,
                legendgroup=name, line={"color": color, "width": 2, "dash": "dot"}, hoverinfo="skip", **axis)
        fig.add("scatter", x=xs, y=np.where(part, ys, np.nan), name=f"{name} (partial)", mode="markers",
                showlegend=False, legendgroup=name,
                marker={"color": color, "symbol": "circle-open", "size": 8, "line": {"width": 2}},
                hovertemplate=f"{name} (partial): %{{y:{_hover(fmt)}}}{_unit(unit)}<extra></extra>", **axis)


def add_bars(fig: Fig, df: pd.DataFrame, x: str, y: str, name: str, color: str, fmt: str = "int",
             partial: np.ndarray | None = None, sign: float = 1.0, secondary_y: bool = False,
             unit: str = "") -> None:
    """Bars; hover shows the exact (unsigned) value.

    Partial periods are a second trace in the same legend group (no legend entry of its own, so the
    legend swatch stays the solid series colour): a light tint of the series colour hatched and outlined
    in that colour, named "<name> (partial)" in the hover. Grouped bars share one slot (offsetgroup).
    """
    values = df[y].to_numpy(dtype=float)
    part = np.zeros(len(values), bool) if partial is None else np.asarray(partial, bool)
    extra = {"yaxis": "y2"} if secondary_y else {}
    if fig.layout.get("barmode", "group") == "group":  # plotly's default puts each trace in its own slot
        extra["offsetgroup"] = name
    fig.add("bar", x=df[x], y=np.where(part, np.nan, values) * sign, name=name, legendgroup=name,
            marker={"color": color}, customdata=np.where(part, np.nan, values),
            hovertemplate=f"{name}: %{{customdata:{_hover(fmt)}}}{_unit(unit)}<extra></extra>", **extra)
    if part.any():
        fig.add("bar", x=df[x], y=np.where(part, values, np.nan) * sign, name=f"{name} (partial)",
                legendgroup=name, showlegend=False,
                marker={"color": _alpha(color, 0.35), "line": {"color": color, "width": 1.5},
                        "pattern": {"shape": "/", "fillmode": "overlay", "fgcolor": color, "size": 7,
                                    "solidity": 0.25}},
                customdata=np.where(part, values, np.nan),
                hovertemplate=f"{name} (partial): %{{customdata:{_hover(fmt)}}}{_unit(unit)}<extra></extra>", **extra)


# --------------------------------------------------------------------------- KPI sparkline

def sparkline_svg(series: pd.Series | None, color: str, width: int = 240, height: int = 44) -> str:
    """A KPI sparkline as a self-contained SVG document (shown as an image: no plotly cost).

    Gaps (missing values) break the line; the area under the line is tinted.
    """
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'preserveAspectRatio="none" width="{width}" height="{height}">')
    if series is None or not len(series):
        return head + "</svg>"
    y = series.to_numpy(dtype=float)
    ok = np.isfinite(y)
    if not ok.any():
        return head + "</svg>"
    lo, hi = float(np.min(y[ok])), float(np.max(y[ok]))
    if lo >= 0 and lo - (hi - lo) * 0.1 < 0:
        lo = 0.0
    span = (hi - lo) or (abs(hi) or 1.0)
    n = len(y)
    xs = np.linspace(2, width - 2, n) if n > 1 else np.array([width / 2])
    ys = height - 3 - (y - lo) / span * (height - 6)
    parts, segment = [], []
    for i in range(n):
        if ok[i]:
            segment.append((xs[i], ys[i]))
        elif segment:
            parts.append(segment)
            segment = []
    if segment:
        parts.append(segment)
    body = []
    for seg in parts:
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in seg)
        if len(seg) > 1:
            body.append(f'<polygon points="{seg[0][0]:.1f},{height} {pts} {seg[-1][0]:.1f},{height}" '
                        f'fill="{color}" fill-opacity="0.12" stroke="none"/>')
            body.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2" '
                        f'stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke"/>')
        else:
            body.append(f'<circle cx="{seg[0][0]:.1f}" cy="{seg[0][1]:.1f}" r="2" fill="{color}"/>')
    return head + "".join(body) + "</svg>"


# --------------------------------------------------------------------------- engagement

def active_users(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """DAU/WAU/MAU lines (day) or distinct active users and average DAU per week/month."""
    if is_empty(df, ["active"]):
        return empty(theme=theme)
    fig = base(theme)
    part = df["partial"].to_numpy(bool)
    if grain == "day":
        for col, name in (("dau", "DAU"), ("wau", "WAU"), ("mau", "MAU")):
            add_line(fig, df, "period", col, name, series_color(col), grain=grain)
        cols = ["period", "dau", "wau", "mau"]
    else:
        word = "Weekly" if grain == "week" else "Monthly"
        add_line(fig, df, "period", "active", f"{word} active users", series_color("active"), grain=grain,
                 partial=part)
        add_line(fig, df, "period", "avg_dau", "Average DAU", series_color("avg_dau"), fmt="float", grain=grain,
                 partial=part)
        cols = ["period", "active", "avg_dau", "partial"]
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", rangemode="tozero", tickformat="~s")
    return attach_csv(fig, df, cols)


def stickiness(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Stickiness (DAU/MAU) over time."""
    if is_empty(df, ["stickiness"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = period_label("stickiness", grain)
    add_line(fig, df, "period", "stickiness", name, series_color("stickiness"), fmt="pct", grain=grain,
             partial=df["partial"].to_numpy(bool), fill="tozeroy")
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".0%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df, ["period", "stickiness", "partial"])


def new_vs_existing(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """New and existing active users as stacked bars, the new-to-active ratio on a second axis."""
    if is_empty(df, ["new_active_users", "existing_active_users"]):
        return empty(theme=theme)
    fig = base2(theme, barmode="stack")
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "existing_active_users", "Existing", series_color("existing_active_users"),
             partial=part)
    add_bars(fig, df, "period", "new_active_users", "New", series_color("new_active_users"), partial=part)
    add_line(fig, df, "period", "new_ratio", "New / active", series_color("new_ratio"), fmt="pct", grain=grain,
             partial=part, secondary_y=True)
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    fig.axis("yaxis2", tickformat=".1~%")
    return attach_csv(fig, df, ["period", "new_active_users", "existing_active_users", "new_ratio", "partial"])


def lifecycle(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Lifecycle bars: new, returning, resurrecting stacked up; dormant below zero."""
    if is_empty(df, ["new", "returning", "resurrecting", "dormant"]):
        return empty(theme=theme)
    fig = base(theme, barmode="relative")
    part = df["partial"].to_numpy(bool) if "partial" in df.columns else None
    for col, name in (("returning", "Returning"), ("new", "New"), ("resurrecting", "Resurrecting")):
        add_bars(fig, df, "period", col, name, series_color(col), partial=part)
    add_bars(fig, df, "period", "dormant", "Dormant", series_color("dormant"), partial=part, sign=-1)
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s", zeroline=True, zerolinewidth=1.5)
    return attach_csv(fig, df, ["period", "new", "returning", "resurrecting", "dormant", "partial"])


# --------------------------------------------------------------------------- demographics

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


# --------------------------------------------------------------------------- loyalty

def points(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Points earned vs redeemed per period."""
    if is_empty(df, ["points_earned", "points_redeemed"]):
        return empty(theme=theme)
    fig = base(theme, barmode="group")
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "points_earned", "Earned", series_color("points_earned"), partial=part)
    add_bars(fig, df, "period", "points_redeemed", "Redeemed", series_color("points_redeemed"), partial=part)
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df, ["period", "points_earned", "points_redeemed", "partial"])


def outstanding(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Outstanding points (earned minus redeemed, cumulative) at the end of each period."""
    if is_empty(df, ["outstanding_points"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    add_line(fig, df, "period", "outstanding_points", "Outstanding points", series_color("outstanding_points"),
             grain=grain, partial=df["partial"].to_numpy(bool), fill="tozeroy")
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df, ["period", "outstanding_points", "partial"])


def participation(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Participation rate (participants / active users) over time."""
    if is_empty(df, ["participation_rate"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = period_label("participation_rate", grain)
    add_line(fig, df, "period", "participation_rate", name, series_color("participation_rate"),
             fmt="pct", grain=grain, partial=df["partial"].to_numpy(bool))
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".0%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df, ["period", "participants", "active", "participation_rate", "partial"])


def balance_histogram(df: pd.DataFrame | None, theme: str = "light", bins: int = 30) -> Fig:
    """Distribution of users' point balances."""
    if df is None or not len(df):
        return empty(theme=theme)
    vals = df["balance"].to_numpy(dtype=float)
    counts, edges = np.histogram(vals[np.isfinite(vals)], bins=bins)
    t = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "users": counts})
    fig = base(theme, hovermode="closest", bargap=0.05, showlegend=False, margin={"l": 64, "t": 16})
    fig.add("bar", x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges) * 0.95,
            marker={"color": series_color("balance")}, customdata=np.stack([edges[:-1], edges[1:]], -1),
            hovertext=[count(n, "user") for n in counts],
            hovertemplate="Balance %{customdata[0]:,.0f}–%{customdata[1]:,.0f}: %{hovertext}<extra></extra>")
    fig.axis("xaxis", title={"text": "balance (points)"}, tickformat="~s")
    fig.axis("yaxis", title={"text": "users"}, tickformat="~s")
    return attach_csv(fig, t)


# --------------------------------------------------------------------------- revenue

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
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s", title={"text": _titled("revenue", currency)})
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
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", rangemode="tozero", title={"text": _titled("per user", currency)})
    return attach_csv(fig, df, ["period", "arpu", "arppu", "partial"])


def conversion(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Conversion rate (buyers / active users) over time."""
    if is_empty(df, ["conversion_rate"]):
        return empty(theme=theme)
    fig = base(theme, showlegend=False)
    name = period_label("conversion_rate", grain)
    add_line(fig, df, "period", "conversion_rate", name, series_color("conversion_rate"), fmt="pct",
             grain=grain, partial=df["partial"].to_numpy(bool))
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
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
    _shade_partial(fig, df.drop_duplicates("period"), grain)
    _time_axis(fig, grain, df["period"])
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
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
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
            line={"color": series_color("revenue"), "width": 2}, fillcolor=_alpha(SERIES["revenue"], .15),
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
            hovertemplate=(f"%{{y}}: %{{x:,.2f}}{_unit(currency)} from %{{customdata[0]:,.0f}} orders "
                           "(%{customdata[1]:,.2f} in the currency sent; %{customdata[2]:,.0f} orders without "
                           "a rate, left out)<extra></extra>"))
    fig.axis("xaxis", tickformat="~s", title={"text": _titled("revenue", currency)})
    fig.axis("yaxis", title={"text": "currency sent"})
    return attach_csv(fig, df, ["currency", "orders", "amount", "revenue", "share", "converted",
                                "unconverted_orders"])


# --------------------------------------------------------------------------- retention

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


# --------------------------------------------------------------------------- funnel

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
            marker={"color": _alpha(SERIES["dormant"], 0.25), "line": {"color": _alpha(SERIES["dormant"], 0.6),
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
        lighter = _alpha(color, 0.55)
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
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat=".1%", rangemode="tozero", title={"text": name})
    return attach_csv(fig, df)


# --------------------------------------------------------------------------- sessions and content

def sessions(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Sessions per period (bars) and sessions per active user (line)."""
    if is_empty(df, ["sessions"]):
        return empty(theme=theme)
    fig = base2(theme)
    part = df["partial"].to_numpy(bool)
    add_bars(fig, df, "period", "sessions", "Sessions", series_color("sessions"), partial=part)
    add_line(fig, df, "period", "sessions_per_user", "Sessions per active user", series_color("sessions_per_user"),
             fmt="float", grain=grain, partial=part, secondary_y=True)
    _shade_partial(fig, df, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", tickformat="~s")
    return attach_csv(fig, df, ["period", "sessions", "user_days", "sessions_per_user", "partial"])


def session_length(df: pd.DataFrame | None, grain: str = "day", theme: str = "light") -> Fig:
    """Average session length and average daily time per active user, in minutes."""
    if df is None or not len(df) or df["avg_session_seconds"].isna().all():
        return empty("Session lengths are not split by user attributes: clear the country/device/gender/age "
                     "filters" if df is not None and len(df) else NO_DATA, theme)
    d = df.assign(avg_session_min=df["avg_session_seconds"] / 60,
                  avg_time_per_user_min=df["avg_time_per_user_seconds"] / 60)
    fig = base(theme, margin={"l": 64})
    part = d["partial"].to_numpy(bool)
    add_line(fig, d, "period", "avg_session_min", "Avg session (min)", series_color("avg_session_seconds"),
             fmt="float", grain=grain, partial=part)
    add_line(fig, d, "period", "avg_time_per_user_min", "Avg daily time per active user (min)",
             series_color("avg_time_per_user_seconds"), fmt="float", grain=grain, partial=part)
    _shade_partial(fig, d, grain)
    _time_axis(fig, grain, df["period"])
    fig.axis("yaxis", rangemode="tozero", title={"text": "minutes"})
    return attach_csv(fig, d, ["period", "avg_session_seconds", "avg_time_per_user_seconds", "partial"])


def top_bar(df: pd.DataFrame | None, key: str, value: str, label: str, color_key: str,
            theme: str = "light") -> Fig:
    """A horizontal bar chart of the top items (events, pages)."""
    if df is None or not len(df):
        return empty(theme=theme)
    d = df.iloc[::-1]
    fig = base(theme, height=max(320, 24 * len(d) + 60), hovermode="closest", showlegend=False,
               margin={"l": label_margin(d[key]), "t": 16, "b": 32})
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
    d = df.iloc[::-1]
    fig = base(theme, hovermode="closest", height=max(300, 26 * len(d) + 60), showlegend=False,
               margin={"l": label_margin(d["course_id"]), "t": 16, "b": 32})
    fig.add("bar", y=d["course_id"], x=d["completion_rate"], orientation="h",
            marker={"color": series_color("completion_rate")},
            customdata=np.stack([d["completions"].to_numpy(float), d["learners"].to_numpy(float)], -1),
            texttemplate="%{x:.0%}", textposition="auto",
            hovertemplate="%{y}: %{x:.1%} (%{customdata[0]:,.0f} of %{customdata[1]:,.0f} learners)<extra></extra>")
    fig.axis("xaxis", tickformat=".0%", range=[0, 1])
    fig.axis("yaxis", type="category")
    return attach_csv(fig, df)


# --------------------------------------------------------------------------- segments and clusters

def segment_sizes(df: pd.DataFrame | None, theme: str = "light") -> Fig:
    """Users per segment with their share."""
    if df is None or not len(df):
        return empty(theme=theme)
    d = df.iloc[::-1]
    fig = base(theme, hovermode="closest", height=max(300, 34 * len(d) + 60), showlegend=False,
               margin={"l": label_margin(d["segment"]), "t": 16, "b": 32})
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
    _shade_partial(fig, df.drop_duplicates("period"), grain)
    _time_axis(fig, grain, df["period"])
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


# --------------------------------------------------------------------------- pipeline health, users

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
                hovertemplate=f"Purchases: %{{customdata[0]:,.0f}} (revenue %{{customdata[1]:,.2f}}{_unit(currency)})"
                              "<extra></extra>")
    _time_axis(fig, "day")
    return attach_csv(fig, df)
