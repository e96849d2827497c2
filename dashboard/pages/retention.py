"""Retention: cohort triangle (daily or weekly cohorts), average retention curve, D1/D7/D30 cards."""

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import retention
from dashboard.filters import Filters

dash.register_page(__name__, path="/retention", name="Retention", order=2, title="Retention · Lakehouse",
                   icon="arrow-repeat")


def _radio(cid, options, value):
    return dbc.RadioItems(id=cid, options=options, value=value, inline=True, className="btn-group grain-group",
                          inputClassName="btn-check", labelClassName="btn btn-sm btn-outline-secondary",
                          labelCheckedClassName="active")


DEFAULTS = {"cohort": "day", "measure": "rate", "mode": "exact"}
CHOICES = {"cohort": ("day", "week"), "measure": ("rate", "count"), "mode": ("exact", "unbounded")}


def view_params(cohort=None, measure=None, mode=None) -> dict:
    """The toggles' URL parameters: known values that differ from the defaults (so a reload keeps them)."""
    given = {"cohort": cohort, "measure": measure, "mode": mode}
    return {k: v for k, v in given.items() if v in CHOICES[k] and v != DEFAULTS[k]}


def layout(cohort="day", measure="rate", mode="exact", theme=None, **query):
    """Controls, D1/D7/D30 cards, cohort heatmap and the average curve."""
    def one(name, v):
        v = v[0] if isinstance(v, list) and v else v
        return v if v in CHOICES[name] else DEFAULTS[name]
    args = c.initial_args(query, theme)
    cohort, measure, mode = one("cohort", cohort), one("measure", measure), one("mode", mode)
    controls = html.Div([
        html.Div([html.Label("Cohorts", className="filter-label"),
                  _radio("ret-cohort", [{"label": "Daily", "value": "day"}, {"label": "Weekly", "value": "week"}],
                         cohort)], className="filter-item"),
        html.Div([html.Label("Show", className="filter-label"),
                  _radio("ret-measure", [{"label": "Rate", "value": "rate"}, {"label": "Users", "value": "count"}],
                         measure)], className="filter-item"),
        html.Div([html.Label("Retained", className="filter-label"),
                  _radio("ret-mode", [{"label": "On day N", "value": "exact"},
                                      {"label": "On or after day N", "value": "unbounded"}], mode)],
                 className="filter-item"),
    ], className="d-flex flex-wrap gap-4 mb-3")
    return c.fill_layout(html.Div([
        c.page_header("Retention", "Cohorts by first-seen date in the selected range: who comes back N days "
                      "(or weeks) later.", icon="arrow-repeat", info_key="retention"),
        c.missing_tables_alert(["retention_daily", "retention_weekly"]),
        c.filter_bar(query, applies=("date", "country", "gender", "age_group"),
                     page_params=view_params(cohort, measure, mode)),
        controls,
        dbc.Row(id="ret-kpis", className="row-cols-1 row-cols-md-3 g-3 mb-3"),
        dbc.Row([c.chart_card("ret-heatmap", "Cohort retention", "retention", height=None, width=12)]),
        dbc.Row([c.chart_card("ret-curve", "Average retention curve", "retention_curve", width=12)]),
    ]), (update_kpis, args), (update_cohorts, args + (cohort, measure, mode)))


@callback(Output("page-params", "data", allow_duplicate=True), Input("ret-cohort", "value"),
          Input("ret-measure", "value"), Input("ret-mode", "value"), prevent_initial_call=True)
def remember_in_url(cohort, measure, mode):
    """Cohorts, Show and Retained go into the URL, so a reload or a bookmark keeps them."""
    return view_params(cohort, measure, mode)


@c.filter_callback(Output("ret-kpis", "children"))
def update_kpis(f: Filters, t: str):
    """D1/D7/D30 for the cohorts in range, vs the previous period's cohorts."""
    cards = retention.retention_kpis(f)
    if not cards:
        return [dbc.Col(c.empty_state("No retention data for this filter"), width=12)]
    return [dbc.Col(c.kpi_card(k, t, c.compare_label(f), "ret-")) for k in cards]


@c.filter_callback(Output({"type": "chart", "id": "ret-heatmap"}, "figure"),
                   Output({"type": "chart", "id": "ret-curve"}, "figure"), Input("ret-cohort", "value"),
                   Input("ret-measure", "value"), Input("ret-mode", "value"))
def update_cohorts(f: Filters, t: str, cohort, measure, mode):
    """Cohort triangle and curve for the chosen cohort size, measure and retention mode."""
    table = retention.retention(f, cohort or "day")
    if table is None:
        name = "retention_weekly" if cohort == "week" else "retention_daily"
        return c.absent(name, t, 520), c.absent(name, t)
    unbounded = mode == "unbounded" and cohort != "week"
    curve = retention.retention_curve(table, unbounded)
    return (figures.retention_heatmap(table, measure or "rate", mode == "unbounded", cohort or "day", t),
            figures.retention_curve(curve, cohort or "day", unbounded, t))
