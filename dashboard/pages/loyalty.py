"""Loyalty: points earned vs redeemed, outstanding balance, participation, balances."""

import dash
import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import loyalty
from dashboard.filters import Filters

dash.register_page(__name__, path="/loyalty", name="Loyalty", order=6, title="Loyalty · Lakehouse", icon="gift")

TOP_COLUMNS = [c.col("user_id", "User"), c.col("balance", "Balance", "numeric"),
               c.col("points_earned", "Earned", "numeric"), c.col("points_redeemed", "Redeemed", "numeric"),
               c.col("last_loyalty_date", "Last activity"), c.col("country", "Country"), c.col("segment", "Segment")]


def layout(theme=None, **query):
    """KPI cards, points charts, balance distribution and the largest balances."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Loyalty", "The points programme: what is earned and redeemed, who takes part and what is "
                      "still outstanding.", icon="gift"),
        c.missing_tables_alert(["loyalty_daily", "loyalty_balances"]),
        c.filter_bar(query),
        dbc.Row(id="loy-kpis", className="row-cols-1 row-cols-sm-2 row-cols-xl-4 g-3 mb-3"),
        dbc.Row([c.chart_card("loy-points", "Points earned vs redeemed", "points_earned", width=12,
                              info_text="Sums of points of points_earned / points_redeemed events per period.")]),
        dbc.Row([
            c.chart_card("loy-outstanding", "Outstanding balance", "outstanding_points", width=6),
            c.chart_card("loy-participation", "Participation per period", "participation_rate", width=6),
        ]),
        dbc.Row([
            c.chart_card("loy-hist", "Distribution of balances", "balance", width=6,
                         info_text="Users with loyalty activity by their all-time balance (earned minus "
                                   "redeemed); country/gender/age filters apply."),
            c.table_card("loy-top", "Largest balances", "balance", width=6),
        ]),
    ]), (update_loyalty, args), (update_balances, args))


@c.filter_callback(Output("loy-kpis", "children"), Output({"type": "chart", "id": "loy-points"}, "figure"),
                   Output({"type": "chart", "id": "loy-outstanding"}, "figure"),
                   Output({"type": "chart", "id": "loy-participation"}, "figure"))
def update_loyalty(f: Filters, t: str):
    """Loyalty KPIs and time series for the filter."""
    df = loyalty.loyalty(f)
    if df is None:
        miss = c.absent("loyalty_daily", t)
        return [dbc.Col(c.empty_state(c.absent_text("loyalty_daily")))], miss, miss, miss
    cards = [dbc.Col(c.kpi_card(k, t, c.compare_label(f), "loy-")) for k in (loyalty.loyalty_kpis(f) or [])]
    return cards, figures.points(df, f.grain, t), figures.outstanding(df, f.grain, t), \
        figures.participation(df, f.grain, t)


@c.filter_callback(Output({"type": "chart", "id": "loy-hist"}, "figure"),
                   Output({"type": "table", "id": "loy-top"}, "children"))
def update_balances(f: Filters, t: str):
    """Balance histogram and the largest balances."""
    b = loyalty.balances(f)
    if b is None:
        return figures.missing("loyalty_balances", t), c.table_view("loy-top", None, TOP_COLUMNS,
                                                                     empty="gold.loyalty_balances does not exist yet")
    cols = [x["id"] for x in TOP_COLUMNS if x["id"] in b.columns]
    return figures.balance_histogram(b, t), c.table_view("loy-top", b.head(100)[cols], TOP_COLUMNS, max_rows=12)
