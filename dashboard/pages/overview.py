"""Overview: KPI cards (change vs the previous period, sparkline) and the main trends."""

import dash
import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import engagement
from dashboard.filters import Filters

dash.register_page(__name__, path="/", name="Overview", order=0, title="Overview · Lakehouse", icon="speedometer2")


def layout(theme=None, **query):
    """Filter bar, KPI grid and two trend charts (computed here: the page arrives drawn)."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Overview", "Key product metrics for the selected period, compared with the previous "
                      "period of equal length.", icon="speedometer2"),
        c.missing_tables_alert(["engagement_daily", "user_activity_daily"]),
        c.filter_bar(query),
        html.Div(id="ov-caption", className="small text-body-secondary mb-2"),
        dbc.Row(id="ov-kpis", className="row-cols-1 row-cols-sm-2 row-cols-lg-3 row-cols-xl-5 g-3 mb-3"),
        dbc.Row([
            c.chart_card("ov-active", "Active users", "active_period", width=7,
                         info_text="Day granularity: DAU, WAU (7 days) and MAU (30 days), rolling windows. "
                                   "Week/month: distinct users active in the period."),
            c.chart_card("ov-new", "New vs existing active users", "new_to_active", width=5),
        ]),
    ]), (update_kpis, args), (update_charts, args))


@c.filter_callback(Output("ov-kpis", "children"), Output("ov-caption", "children"))
def update_kpis(f: Filters, t: str):
    """KPI cards for the range."""
    cards = engagement.kpis(f)
    grid = [dbc.Col(c.kpi_card(k, t, c.compare_label(f), "ov-")) for k in cards] if cards \
        else [dbc.Col(c.empty_state("No data for this filter"), width=12)]
    return grid, c.range_caption(f, compare=True)


@c.filter_callback(Output({"type": "chart", "id": "ov-active"}, "figure"),
                   Output({"type": "chart", "id": "ov-new"}, "figure"))
def update_charts(f: Filters, t: str):
    """Active users and new-vs-existing charts."""
    df = engagement.engagement(f)
    return figures.active_users(df, f.grain, t), figures.new_vs_existing(df, f.grain, t)
