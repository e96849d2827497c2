"""What every chart shares: plain plotly JSON figures, their CSV tables, axes, lines and bars.

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

from ..theme import muted, template


FMT = {"int": ",.0f", "pct": ".1%", "money": ",.2f", "float": ",.2f", "sec": ",.0f"}


NO_DATA = "No data for this filter"


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
    """jsonable applied to every value of a (nested) dict."""
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


def ranked_bars(df: pd.DataFrame, label: str, theme: str = "light", row_px: int = 26, min_height: int = 300
                ) -> tuple[pd.DataFrame, Fig]:
    """The rows of a horizontal bar chart in drawing order (plotly draws the first row at the bottom, so
    the frame is reversed) and its figure: `row_px` per row, a left margin fitting the `label` column."""
    d = df.iloc[::-1]
    fig = base(theme, hovermode="closest", height=max(min_height, row_px * len(d) + 60), showlegend=False,
               margin={"l": label_margin(d[label]), "t": 16, "b": 32})
    return d, fig


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


def hover_fmt(fmt: str) -> str:
    """The d3 format of a value kind (int, pct, money, float, sec) in hover templates; other text as is."""
    return FMT.get(fmt, fmt)


def unit_suffix(unit: str) -> str:
    """' USD' after a hover value (nothing without a unit)."""
    return f" {unit}" if unit else ""


def titled(text: str, unit: str) -> str:
    """An axis title with its unit: 'revenue (USD)'."""
    return f"{text} ({unit})" if unit else text


def rgba(hex_color: str, a: float) -> str:
    """'#rrggbb' with opacity a as a CSS rgba() colour."""
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


def time_axis(fig: Fig, grain: str, periods=None) -> None:
    """Hover format of the time axis; week and month axes tick each period (see period_ticks)."""
    fig.axis("xaxis", hoverformat="%b %Y" if grain == "month" else ("Week of %d %b %Y" if grain == "week"
                                                                     else "%a %d %b %Y"))
    if grain in ("week", "month") and periods is not None and len(periods):
        vals, text = period_ticks(periods, grain)
        fig.axis("xaxis", type="date", tickmode="array", tickvals=vals, ticktext=text, ticks="outside",
                 ticklen=4, tickangle=0)


def shade_partial(fig: Fig, df: pd.DataFrame, grain: str) -> None:
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
            fillcolor=rgba(color, 0.15) if fill else None, connectgaps=False,
            hovertemplate=f"{name}: %{{y:{hover_fmt(fmt)}}}{unit_suffix(unit)}<extra></extra>", **axis)
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
                hovertemplate=f"{name} (partial): %{{y:{hover_fmt(fmt)}}}{unit_suffix(unit)}<extra></extra>",
                **axis)


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
            hovertemplate=f"{name}: %{{customdata:{hover_fmt(fmt)}}}{unit_suffix(unit)}<extra></extra>", **extra)
    if part.any():
        fig.add("bar", x=df[x], y=np.where(part, values, np.nan) * sign, name=f"{name} (partial)",
                legendgroup=name, showlegend=False,
                marker={"color": rgba(color, 0.35), "line": {"color": color, "width": 1.5},
                        "pattern": {"shape": "/", "fillmode": "overlay", "fgcolor": color, "size": 7,
                                    "solidity": 0.25}},
                customdata=np.where(part, values, np.nan),
                hovertemplate=f"{name} (partial): %{{customdata:{hover_fmt(fmt)}}}{unit_suffix(unit)}<extra></extra>",
                **extra)


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
