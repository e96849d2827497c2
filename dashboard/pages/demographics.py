"""Demographics: users, active users and new users by gender, age group and country."""

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import demographics
from dashboard.filters import Filters

dash.register_page(__name__, path="/demographics", name="Demographics", order=5, title="Demographics · Lakehouse",
                   icon="people")

MEASURE_OPTIONS = [{"label": "Active users", "value": "active_users"}, {"label": "Users", "value": "users"},
                   {"label": "New users", "value": "new_users"}]


def layout(theme=None, **query):
    """Charts by gender, age group and country plus a gender x age heatmap."""
    args = c.initial_args(query, theme)
    measure = dbc.Select(id="demo-measure", options=MEASURE_OPTIONS, value="active_users", size="sm",
                         style={"width": "150px"})
    return c.fill_layout(html.Div([
        c.page_header("Demographics", "Users are every known user; active and new users are counted in the "
                      "selected date range.", icon="people", info_key="demographics"),
        c.missing_tables_alert(["users", "user_activity_daily", "demographics"]),
        c.filter_bar(query, applies=("date", "country", "device", "gender", "age_group")),
        dbc.Row([
            c.chart_card("demo-gender", "By gender", "users", width=6,
                         info_text="Users: every known user. Active users: distinct users active in the range. "
                                   "New users: first seen in the range."),
            c.chart_card("demo-age", "By age group", "users", width=6,
                         info_text="Age in whole years as of the lake's last date; unknown when no birth date "
                                   "or age."),
        ]),
        dbc.Row([
            c.chart_card("demo-country", "By country (top 20)", "demographics", width=6, height=None),
            c.chart_card("demo-heatmap", "Gender × age group", "demographics", width=6, height=420,
                         controls=measure),
        ]),
    ]), (update_demographics, args + ("active_users",)))


@c.filter_callback(Output({"type": "chart", "id": "demo-gender"}, "figure"),
                   Output({"type": "chart", "id": "demo-age"}, "figure"),
                   Output({"type": "chart", "id": "demo-country"}, "figure"),
                   Output({"type": "chart", "id": "demo-heatmap"}, "figure"), Input("demo-measure", "value"))
def update_demographics(f: Filters, t: str, measure):
    """All demographic charts for the filter."""
    df = demographics.demographics(f)
    return (figures.by_dimension(df, "gender", t), figures.by_dimension(df, "age_group", t),
            figures.by_dimension(df, "country", t, top=20, horizontal=True),
            figures.demographic_heatmap(df, measure or "active_users", t))
