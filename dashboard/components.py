"""Layout building blocks shared by the pages: filter bar, chart and table cards, KPI cards, tooltips."""

from __future__ import annotations

import base64
import functools
import math
import re
from urllib.parse import quote
from datetime import date

import dash_bootstrap_components as dbc
import pandas as pd
import dash
from dash import Input, Output, dcc, html

from . import data, figures
from .data import Kpi
from .definitions import definition
from .figures import sparkline_svg
from .filters import GRAINS, PRESETS, Filters
from .theme import series_color
from .wording import count

ALL_FILTERS = ("date", "grain", "country", "device", "gender", "age_group")
FILTER_IDS = {"country": "f-country", "device": "f-device", "gender": "f-gender", "age_group": "f-age"}
FILTER_INPUTS = [
    Input("f-dates", "start_date"), Input("f-dates", "end_date"), Input("f-grain", "value"),
    Input("f-country", "value"), Input("f-device", "value"), Input("f-gender", "value"), Input("f-age", "value"),
    Input("theme-store", "data"),
]


def page_callback(*specs, prefill: bool = True):
    """dash.callback for a page whose layout() computes the first outputs itself (see fill_layout).

    With prefill the callback only runs on changes (prevent_initial_call): the page arrives with its
    figures in the first response, so the browser draws each chart once and saves a round trip.
    """
    outputs = [(o.component_id, o.component_property) for o in specs if isinstance(o, Output)]

    def deco(fn):
        wrapped = dash.callback(*specs, prevent_initial_call=prefill)(fn)
        wrapped.lakehouse_outputs = outputs
        return wrapped
    return deco


def filter_callback(*specs, ignore: tuple[str, ...] = (), prefill: bool = True):
    """page_callback for a callback of the filter bar: `fn(f, theme, *extra)` gets the bar's selection as
    one `Filters` (built here, the one place the bar's values become a selection; the dimensions in
    `ignore` are left out) and the theme ('light' | 'dark'), then the values of any further inputs in
    `specs`. The registered callback takes the bar's values positionally (FILTER_INPUTS, then the
    further inputs), as Dash and `initial_args` pass them."""
    outputs = [s for s in specs if isinstance(s, Output)]
    more = [s for s in specs if not isinstance(s, Output)]

    def deco(fn):
        @functools.wraps(fn)
        def from_bar(start, end, grain, country, device, gender, age, theme, *extra):
            dims = {"country": country, "device": device, "gender": gender, "age_group": age}
            dims.update({d: None for d in ignore})
            return fn(Filters.from_inputs(start, end, grain, **dims), theme_of(theme), *extra)
        return page_callback(*outputs, *FILTER_INPUTS, *more, prefill=prefill)(from_bar)
    return deco


def initial_args(query: dict | None, theme) -> tuple:
    """The filter-callback arguments a page starts with: the URL's filters, resolved on the lake."""
    f = Filters.from_params(query or {})
    bounds = data.lake_bounds()
    lo, hi = f.picker_dates(*bounds) if bounds else (None, None)
    start, end = (lo.isoformat() if lo else None), (hi.isoformat() if hi else None)
    return (start, end, f.grain, list(f.country), list(f.device), list(f.gender), list(f.age_group),
            theme_of(theme))


def fill_layout(tree, *calls):
    """Run page callbacks once (callback, args) and put their outputs into the layout tree."""
    values = {}
    for cb, args in calls:
        out = cb(*args)
        outs = cb.lakehouse_outputs
        if len(outs) == 1:
            out = (out,)
        for (cid, prop), value in zip(outs, out):
            values[(_key(cid), prop)] = value
    _assign(tree, values)
    return tree


def _key(cid):
    return tuple(sorted(cid.items())) if isinstance(cid, dict) else cid


def _assign(node, values: dict) -> None:
    if isinstance(node, (list, tuple)):
        for child in node:
            _assign(child, values)
        return
    if not hasattr(node, "to_plotly_json"):
        return
    cid = getattr(node, "id", None)
    if cid is not None:
        for (key, prop), value in values.items():
            if key == _key(cid):
                setattr(node, prop, value)
    children = getattr(node, "children", None)
    if children is not None:
        _assign(children, values)


def filters_from(start, end, grain, country, device, gender, age) -> Filters:
    """The Filters behind the filter bar's values (dates already resolved by the bar)."""
    return Filters.from_inputs(start, end, grain, country, device, gender, age)


def theme_of(value) -> str:
    """'dark' or 'light' from the theme store."""
    return "dark" if value == "dark" else "light"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


# --------------------------------------------------------------------------- tooltips

def info(key: str, uid: str, text: str | None = None) -> list:
    """An (i) icon with the metric's definition as tooltip."""
    body = text or definition(key)
    if not body:
        return []
    target = f"info-{_slug(uid)}"
    return [html.I(className="bi bi-info-circle ms-1 text-body-secondary info-icon", id=target, tabIndex=0,
                   **{"aria-label": body}),
            dbc.Tooltip(body, target=target, placement="top", className="metric-tooltip")]


# --------------------------------------------------------------------------- filter bar

def filter_bar(query: dict | None = None, applies: tuple[str, ...] = ALL_FILTERS,
               page_params: dict | None = None) -> html.Div:
    """Superset-style filter bar; initial values come from the URL query string."""
    f = Filters.from_params(query or {})
    bounds = data.lake_bounds()
    rng = f.picker_dates(*bounds) if bounds else None  # an empty selection keeps its own dates
    opts = data.filter_options() if bounds else {d: [] for d in FILTER_IDS}

    def dropdown(dim: str, label: str) -> html.Div:
        values = list(getattr(f, dim))
        options = [{"label": v, "value": v} for v in opts.get(dim, [])]
        known = {o["value"] for o in options}
        options += [{"label": v, "value": v} for v in values if v not in known]
        disabled = dim not in applies
        return html.Div([
            html.Label(label, className="filter-label", htmlFor=FILTER_IDS[dim]),
            dcc.Dropdown(id=FILTER_IDS[dim], options=options, value=values, multi=True,
                         placeholder="All" if not disabled else "n/a here", disabled=disabled,
                         className="filter-dropdown"),
        ], className="filter-item filter-dim" + (" filter-disabled" if disabled else ""),
            title="This filter does not apply to this page" if disabled else None)

    date_disabled = "date" not in applies
    first_row = html.Div([
        html.Div([
            html.Label("Date range", className="filter-label", htmlFor="f-preset"),
            html.Div([
                dcc.Dropdown(id="f-preset", options=[{"label": v, "value": k} for k, v in PRESETS.items()],
                             value=f.preset, clearable=False, searchable=False, className="filter-preset",
                             disabled=date_disabled),
                dcc.DatePickerRange(id="f-dates", start_date=rng[0] if rng else None,
                                    end_date=rng[1] if rng else None,
                                    min_date_allowed=bounds[0] if bounds else None,
                                    max_date_allowed=bounds[1] if bounds else None,
                                    display_format="YYYY-MM-DD", first_day_of_week=1, minimum_nights=0,
                                    updatemode="bothdates", disabled=date_disabled, className="filter-dates"),
            ], className="d-flex gap-2 align-items-center"),
        ], className="filter-item" + (" filter-disabled" if date_disabled else "")),
        html.Div([
            html.Label("Granularity", className="filter-label"),
            dbc.RadioItems(id="f-grain", options=[{"label": v, "value": k} for k, v in GRAINS.items()],
                           value=f.grain, inline=True, className="btn-group grain-group",
                           inputClassName="btn-check", labelClassName="btn btn-sm btn-outline-primary",
                           labelCheckedClassName="active"),
        ], className="filter-item" + (" filter-disabled" if "grain" not in applies else ""),
            title="Granularity does not apply to this page" if "grain" not in applies else None),
        html.Div([
            dbc.Button([html.I(className="bi bi-arrow-counterclockwise me-1"), "Reset"], id="f-reset",
                       color="secondary", outline=True, size="sm"),
        ], className="filter-item ms-auto align-self-end"),
    ], className="filter-row")
    second_row = html.Div([dropdown("country", "Country"), dropdown("device", "Device"),
                           dropdown("gender", "Gender"), dropdown("age_group", "Age group")],
                          className="filter-grid")
    note = html.Div(range_note(f, Filters.problems(query or {})), id="f-range-note")
    bar = html.Div([first_row, second_row, note, dcc.Store(id="page-params", data=page_params or {})],
                   className="filter-bar card card-body py-2 px-3 mb-3", id="filter-bar")
    return bar


def no_data_text(f: Filters, bounds: tuple[date, date]) -> str:
    """'No data in this range (…): the lake has data from … to ….' for a selection outside the lake."""
    if f.start and f.end:
        asked = f"{fmt_date(f.start)} – {fmt_date(f.end)}"
    else:
        asked = f"from {fmt_date(f.start)}" if f.start else f"until {fmt_date(f.end)}"
    return (f"No data in this range ({asked}): the lake has data from {fmt_date(bounds[0])} "
            f"to {fmt_date(bounds[1])}.")


def range_note(f: Filters, problems: list[str] | tuple = ()) -> list:
    """Warnings under the filter bar: URL values that were ignored, and a range with no day of data."""
    bounds = data.lake_bounds()
    lines = list(problems)
    if bounds and f.is_empty_on(*bounds):
        lines.append(no_data_text(f, bounds))
    return [html.Div([html.I(className="bi bi-exclamation-triangle me-1"), line],
                     className="range-note small text-warning-emphasis mt-1") for line in lines]


def absent_text(table: str) -> str:
    """Why a data function returned None: the gold table is missing, or no day of the lake is in range."""
    return f"gold.{table} does not exist yet" if not data.has(table) else "No data in this range"


def absent(table: str, theme: str = "light", height: int | None = None):
    """The chart for a data function that returned None (see absent_text)."""
    if not data.has(table):
        return figures.missing(table, theme, height)
    return figures.empty("No data in this range", theme, height)


def range_caption(f: Filters, compare: bool = False) -> str:
    """'1 Dec 2024 – 30 Dec 2024 (30 days)' for the filter's resolved range."""
    bounds = data.lake_bounds()
    if bounds is None:
        return "The lake has no data yet."
    rng = data.resolve(f)
    if rng is None:
        return ""  # the filter bar says "No data in this range" with the lake's range
    lo, hi = rng
    n = (hi - lo).days + 1
    text = f"{lo:%d %b %Y} – {hi:%d %b %Y} ({count(n, 'day')})"
    if compare:
        text += f" · changes vs the previous {count(n, 'day')}"
    return text


# --------------------------------------------------------------------------- page chrome

def page_header(title: str, subtitle: str = "", icon: str = "bar-chart", info_key: str | None = None,
                right=None) -> html.Div:
    """A page title with a one-line explanation."""
    return html.Div([
        html.Div([
            html.H4([html.I(className=f"bi bi-{icon} me-2 text-primary"), title,
                     *(info(info_key, f"page-{title}") if info_key else [])], className="mb-0 page-title"),
            html.Div(subtitle, className="text-body-secondary small page-subtitle"),
        ]),
        html.Div(right, className="ms-auto") if right is not None else None,
    ], className="d-flex align-items-end mb-3 page-header")


def missing_tables_alert(names: list[str]) -> dbc.Alert | None:
    """An alert naming the gold tables this page needs that the pipeline has not produced yet."""
    missing = [n for n in names if not data.has(n)]
    if not missing:
        return None
    return dbc.Alert([html.I(className="bi bi-hourglass-split me-2"),
                      "Not available yet: ", ", ".join(f"gold.{n}" for n in missing),
                      " — these tables do not exist in the lake. Run the pipeline to fill this page."],
                     color="warning", className="py-2 small", id="missing-tables")


GRAPH_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
                "toImageButtonOptions": {"format": "png", "scale": 2}, "responsive": True}


def graph_config(name: str) -> dict:
    """Plotly toolbar config; the camera button saves a PNG named after the chart."""
    cfg = dict(GRAPH_CONFIG)
    cfg["toImageButtonOptions"] = {**GRAPH_CONFIG["toImageButtonOptions"], "filename": name}
    return cfg


def csv_button(kind: str, cid: str) -> html.Span:
    """A small 'CSV' download button with its dcc.Download."""
    return html.Span([
        dbc.Button([html.I(className="bi bi-download me-1"), "CSV"], id={"type": f"{kind}-btn", "id": cid},
                   size="sm", color="link", className="csv-btn p-0 ms-2", title="Download the data as CSV"),
        dcc.Download(id={"type": f"{kind}-dl", "id": cid}),
    ])


def chart_card(cid: str, title: str, info_key: str | None = None, height: int | None = 320, controls=None,
               width: int | dict = 12, footer=None, info_text: str | None = None) -> dbc.Col:
    """A card with a title, definition tooltip, CSV button and a plotly graph (PNG via its toolbar)."""
    header = html.Div([
        html.Span(title, className="card-title-text"),
        *(info(info_key, f"chart-{cid}", info_text) if (info_key or info_text) else []),
        html.Span(controls, className="ms-auto me-2") if controls is not None else html.Span(className="ms-auto"),
        csv_button("csv", cid),
    ], className="d-flex align-items-center")
    # fixed height: the figure fills it; None: the figure sets its own (data-dependent) height
    style = {"height": f"{height}px"} if height else {"minHeight": "300px"}
    body = dcc.Loading(dcc.Graph(id={"type": "chart", "id": cid}, config=graph_config(cid), style=style,
                                 className="chart"),
                       type="dot", delay_show=300, color="var(--bs-primary)")
    card = dbc.Card([dbc.CardHeader(header, className="chart-header"), dbc.CardBody(body, className="p-2"),
                     dbc.CardFooter(footer, className="small text-body-secondary") if footer else None],
                    className="chart-card h-100")
    kw = {"lg": width, "xs": 12} if isinstance(width, int) else width
    return dbc.Col(card, className="mb-3", **kw)


def table_card(tid: str, title: str, info_key: str | None = None, width: int | dict = 12, controls=None,
               info_text: str | None = None) -> dbc.Col:
    """A card holding a small server-rendered table (filled by a callback with table_view)."""
    header = html.Div([
        html.Span(title, className="card-title-text"),
        *(info(info_key, f"table-{tid}", info_text) if (info_key or info_text) else []),
        html.Span(controls, className="ms-auto me-5") if controls is not None else None,
    ], className="d-flex align-items-center")
    card = dbc.Card([dbc.CardHeader(header, className="chart-header"),
                     dbc.CardBody(html.Div(id={"type": "table", "id": tid}), className="p-2 position-relative")],
                    className="chart-card h-100")
    k = {"lg": width, "xs": 12} if isinstance(width, int) else width
    return dbc.Col(card, className="mb-3", **k)


def _cell(value, spec: dict):
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    kind = spec.get("kind", "text")
    if kind == "link":
        text, href = value
        return dcc.Link(text, href=href, className="segment-link")
    if kind == "numeric":
        try:
            return format(float(value), spec.get("fmt") or ",.0f")
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime(spec.get("datefmt", "%Y-%m-%d %H:%M"))
    return str(value)


def table_view(tid: str, df: pd.DataFrame | None, columns: list[dict], max_rows: int = 15,
               row_class=None, empty: str = "No rows for this filter") -> list:
    """A Bootstrap table of df's first rows plus a CSV link holding every row of df.

    Plain HTML (no DataTable): light to draw, themed by Bootstrap; the CSV is a data: URI, so the
    download needs no callback.
    """
    if df is None or not len(df):
        return [empty_state(empty)]
    ids = [c["id"] for c in columns if c["id"] in df.columns]
    specs = {c["id"]: dict(c) for c in columns}
    for c in ids:  # a column of dates (all at midnight) shows no time
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            d = pd.DatetimeIndex(df[c]).dropna()
            specs[c]["datefmt"] = "%Y-%m-%d" if (d == d.normalize()).all() else "%Y-%m-%d %H:%M"
    plain = df[ids].copy()
    for c in ids:
        if specs[c].get("kind") == "link":
            plain[c] = [v[1] if isinstance(v, (tuple, list)) else v for v in plain[c]]
    csv = plain.to_csv(index=False)
    link = html.A([html.I(className="bi bi-download me-1"), "CSV"], className="table-csv csv-btn",
                  href="data:text/csv;charset=utf-8," + quote(csv), download=f"{tid}.csv",
                  id={"type": "tcsv", "id": tid}, title="Download the data as CSV")
    head = html.Thead(html.Tr([html.Th(specs[c]["name"], className="text-end" if specs[c].get("kind") == "numeric"
                                       else None) for c in ids]))
    rows = []
    for i, rec in enumerate(df[ids].head(max_rows).itertuples(index=False, name=None)):
        cls = row_class(df.iloc[i]) if row_class else None
        rows.append(html.Tr([html.Td(_cell(v, specs[c]), className="text-end" if specs[c].get("kind") == "numeric"
                                     else None) for v, c in zip(rec, ids)], className=cls))
    more = [html.Div(f"Showing {max_rows:,} of {count(len(df), 'row')} · the CSV has them all",
                     className="small text-body-secondary mt-1")] if len(df) > max_rows else []
    table = dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, responsive=True,
                      className="mb-0 data-table")
    return [link, table, *more]


def col(cid: str, name: str, kind: str = "text", fmt: str | None = None) -> dict:
    """A column spec: id, header, kind (text | numeric | link) and a number format (Python/d3 spec)."""
    c = {"id": cid, "name": name, "kind": kind}
    if kind == "numeric":
        c["type"] = "numeric"
        c["fmt"] = fmt or ",.0f"
        c["format"] = {"specifier": c["fmt"]}
    return c


MONEY_COLUMNS = ("revenue", "avg_revenue", "amount_reporting")


def money_columns(columns: list[dict]) -> list[dict]:
    """Column specs whose money columns name the lake's reporting currency ('Revenue (USD)')."""
    from dashboard import data

    return [{**x, "name": data.money_label(x["name"])} if x["id"] in MONEY_COLUMNS else x for x in columns]


def records(df: pd.DataFrame | None) -> list[dict]:
    """DataFrame -> DataTable rows (dates as ISO strings, NaN as empty)."""
    if df is None or not len(df):
        return []
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d %H:%M").str.replace(" 00:00", "", regex=False)
    out = out.astype(object).where(out.notna(), None)
    return out.to_dict("records")


# --------------------------------------------------------------------------- KPI cards

def fmt_value(v: float | None, fmt: str = "int") -> str:
    """A KPI value as text ('—' when missing)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if fmt == "pct":
        return f"{v:.1%}"
    if fmt == "money":
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"
    if fmt == "float":
        return f"{v:,.2f}"
    if fmt == "sec":
        return f"{v / 60:,.1f} min"
    return f"{v:,.0f}"


def with_unit(text: str, unit: str = "") -> str:
    """'1,234.50 USD' (the text alone without a unit or without a value)."""
    return f"{text} {unit}" if unit and text != "—" else text


def delta_badge(k: Kpi, compare_label: str) -> html.Span:
    """▲/▼ change (green up, red down): relative for counts, in percentage points for rates; '—' when there
    is no comparable previous period."""
    ch = k.change
    if ch is None:
        why = "no previous period in the lake" if k.previous is None and k.value is not None else "no change to show"
        return html.Span(f"— {why}" if k.value is not None else "", className="kpi-delta text-body-secondary",
                         title="The previous period of equal length is not (fully) in the lake, or a value is "
                               "missing or zero")
    up = ch >= 0
    icon = "bi-arrow-up-right" if up else "bi-arrow-down-right"
    cls = "text-success" if up else "text-danger"
    return html.Span([html.Span([html.I(className=f"bi {icon} me-1"), k.change_text], className=cls),
                      html.Span(f" vs {compare_label}", className="text-body-secondary fw-normal")],
                     className="kpi-delta", title=f"previous: {with_unit(fmt_value(k.previous, k.fmt), k.unit)}")


def paying_users_text(paying: int, buyers: int | None) -> str:
    """'468 paying users in the range (revenue > 0) · 4 of the 472 buyers paid nothing' (the difference said)."""
    text = f"{count(paying, 'paying user')} in the range (revenue > 0)"
    if buyers is not None and buyers != paying:
        free = buyers - paying
        text += f" · {free:,} of the {count(buyers, 'buyer')} only had zero-amount orders"
    return text


def svg_data_uri(svg: str) -> str:
    """An SVG document as a data: URI for html.Img."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def spark_title(k: Kpi) -> str:
    """Hover text of a sparkline: first, last, min and max with their dates."""
    s = k.spark.dropna() if k.spark is not None else None
    if s is None or not len(s):
        return "no data"
    lo, hi = s.idxmin(), s.idxmax()
    v = lambda x: with_unit(fmt_value(float(x), k.fmt), k.unit)  # noqa: E731
    return (f"{fmt_date(s.index[0])}: {v(s.iloc[0])} → {fmt_date(s.index[-1])}: "
            f"{v(s.iloc[-1])} · min {v(s.min())} ({fmt_date(lo)}) · max {v(s.max())} ({fmt_date(hi)})")


def kpi_card(k: Kpi, theme: str, compare_label: str, uid: str = "") -> dbc.Card:
    """A KPI card: label with definition, value, change vs the previous period, sparkline."""
    return dbc.Card(dbc.CardBody([
        html.Div([html.Span(k.label, className="kpi-label"), *info(k.definition_key, f"kpi-{uid}{k.key}")],
                 className="d-flex align-items-center"),
        html.Div([fmt_value(k.value, k.fmt), html.Span(f" {k.unit}", className="kpi-unit") if k.unit else None],
                 className="kpi-value", id=f"kpi-value-{uid}{k.key}",
                 title=f"{k.value:,.4f}" if isinstance(k.value, float) and math.isfinite(k.value) else None),
        html.Div(delta_badge(k, compare_label)),
        html.Div(k.note, className="kpi-note small text-body-secondary") if k.note else None,
        html.Img(src=svg_data_uri(sparkline_svg(k.spark, series_color(k.key))), className="kpi-spark",
                 alt=f"{k.label} trend", title=spark_title(k)),
    ], className="p-3"), className="kpi-card h-100", id=f"kpi-{uid}{k.key}")


def empty_state(message: str, icon: str = "inbox") -> html.Div:
    """A friendly placeholder for missing data."""
    return html.Div([html.I(className=f"bi bi-{icon} fs-3 d-block mb-1"), message],
                    className="empty-state text-center text-body-secondary py-4")


def compare_label(f: Filters) -> str:
    """'previous 30 days' for the KPI deltas."""
    rng = data.resolve(f)
    if rng is None:
        return "previous period"
    n = (rng[1] - rng[0]).days + 1
    return f"prev. {count(n, 'day')}"


def fmt_date(d) -> str:
    """A date (or timestamp) as '30 Dec 2024'."""
    if d is None or (isinstance(d, float) and math.isnan(d)) or d is pd.NaT:
        return "—"
    if isinstance(d, pd.Timestamp):
        d = d.to_pydatetime()
    return d.strftime("%d %b %Y") if isinstance(d, date) else str(d)
