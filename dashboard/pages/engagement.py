"""Engagement: DAU/WAU/MAU, stickiness, new vs existing active users, lifecycle."""

import dash
import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import engagement, lifecycle
from dashboard.filters import Filters

dash.register_page(__name__, path="/engagement", name="Engagement", order=1, title="Engagement · Lakehouse",
                   icon="activity")


def layout(theme=None, **query):
    """Four engagement charts under the filter bar."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Engagement", "How many users are active, how sticky the product is and where active "
                      "users come from.", icon="activity", info_key="active"),
        c.missing_tables_alert(["engagement_daily", "lifecycle_daily", "user_activity_daily"]),
        c.filter_bar(query),
        html.Div(id="eng-caption", className="small text-body-secondary mb-2"),
        dbc.Row([
            c.chart_card("eng-active", "Active users", "active_period", width=8,
                         info_text="Day: DAU = users active that day; WAU = distinct users active in the last 7 "
                                   "days; MAU = in the last 30 days (rolling). Week/month: distinct users active "
                                   "in the period, and the average DAU."),
            c.chart_card("eng-stickiness", "Stickiness per period", "stickiness", width=4),
        ]),
        dbc.Row([
            c.chart_card("eng-new", "New vs existing active users", "new_to_active", width=6),
            c.chart_card("eng-lifecycle", "Lifecycle", "lifecycle", width=6),
        ]),
    ]), (update_engagement, args), (update_lifecycle, args))


@c.filter_callback(Output({"type": "chart", "id": "eng-active"}, "figure"),
                   Output({"type": "chart", "id": "eng-stickiness"}, "figure"),
                   Output({"type": "chart", "id": "eng-new"}, "figure"), Output("eng-caption", "children"))
def update_engagement(f: Filters, t: str):
    """Active users, stickiness and new-vs-existing for the filter."""
    df = engagement.engagement(f)
    return (figures.active_users(df, f.grain, t), figures.stickiness(df, f.grain, t),
            figures.new_vs_existing(df, f.grain, t), c.range_caption(f))


@c.filter_callback(Output({"type": "chart", "id": "eng-lifecycle"}, "figure"))
def update_lifecycle(f: Filters, t: str):
    """Lifecycle bars for the filter."""
    return figures.lifecycle(lifecycle.lifecycle(f), f.grain, t)
