"""Revenue: revenue, orders, buyers, ARPU/ARPPU, conversion (also by device), failed payments, Pareto."""

import dash
import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data import lake
from dashboard.data.families import revenue
from dashboard.filters import Filters

dash.register_page(__name__, path="/revenue", name="Revenue", order=4, title="Revenue · Lakehouse",
                   icon="cash-coin")


def layout(theme=None, **query):
    """KPI cards, revenue trend, unit economics, conversion and the revenue concentration."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Revenue", "Successful purchases: what they bring, who buys and how concentrated "
                      "revenue is.", icon="cash-coin", info_key="revenue"),
        c.missing_tables_alert(["revenue_daily", "user_revenue", "user_activity_daily"]),
        c.filter_bar(query),
        dbc.Row(id="rev-kpis", className="row-cols-1 row-cols-sm-2 row-cols-lg-3 row-cols-xxl-6 g-3 mb-3"),
        dbc.Row([c.chart_card("rev-trend", "Revenue, orders and buyers", "revenue", width=12)]),
        dbc.Row([
            c.chart_card("rev-arpu", "ARPU and ARPPU", "arpu", width=6,
                         info_text="ARPU = revenue / active users; ARPPU = revenue / buyers (distinct users of "
                                   "the day, week or month)."),
            c.chart_card("rev-conversion", "Buyer conversion per period", "conversion_rate", width=6),
        ]),
        dbc.Row([
            c.chart_card("rev-device", "Buyer conversion per period, by device", "conversion_rate", width=6,
                         info_text="Buyers / active users of the period, per device; a user-day's device is the "
                                   "device of most of its active events."),
            c.chart_card("rev-failed", "Failed payments", "failed_payments", width=6),
        ]),
        dbc.Row([
            c.chart_card("rev-pareto", "Revenue concentration (Pareto)", "pareto", width=8, height=360),
            dbc.Col(html.Div(id="rev-shares"), lg=4, xs=12, className="mb-3"),
        ]),
        dbc.Row([
            c.chart_card("rev-currency", "Revenue by currency sent", None, width=12, height=None,
                         info_text="Successful purchases per currency as sent (gold.revenue_by_currency_daily): "
                                   "orders, the original amounts and the revenue they make in the reporting "
                                   "currency at ECB reference rates. A currency without a rate is left out of "
                                   "revenue. Not split by user attributes."),
        ]),
    ]), (update_revenue, args), (update_split, args), (update_currency, args))


@c.filter_callback(Output("rev-kpis", "children"), Output({"type": "chart", "id": "rev-trend"}, "figure"),
                   Output({"type": "chart", "id": "rev-arpu"}, "figure"),
                   Output({"type": "chart", "id": "rev-conversion"}, "figure"),
                   Output({"type": "chart", "id": "rev-failed"}, "figure"))
def update_revenue(f: Filters, t: str):
    """Revenue KPIs and time series."""
    df = revenue.revenue(f)
    if df is None:
        miss = c.absent("revenue_daily", t)
        return [dbc.Col(c.empty_state(c.absent_text("revenue_daily")))], miss, miss, miss, miss
    cards = [dbc.Col(c.kpi_card(k, t, c.compare_label(f), "rev-")) for k in (revenue.revenue_kpis(f) or [])]
    cur = revenue.reporting_currency()
    return (cards, figures.revenue_orders(df, f.grain, t, cur), figures.arpu(df, f.grain, t, cur),
            figures.conversion(df, f.grain, t), figures.failed_payments(df, f.grain, t))


@c.filter_callback(Output({"type": "chart", "id": "rev-device"}, "figure"),
                   Output({"type": "chart", "id": "rev-pareto"}, "figure"), Output("rev-shares", "children"))
def update_split(f: Filters, t: str):
    """Conversion by device and the Pareto view of revenue per user."""
    p = revenue.pareto(f)
    shares = revenue.top_shares(p)
    cards = [dbc.Card(dbc.CardBody([
        html.Div([html.Span(f"Top {int(k * 100)}% of paying users", className="kpi-label"),
                  *c.info("pareto", f"pareto-{int(k * 100)}")], className="d-flex align-items-center"),
        html.Div(c.fmt_value(v, "pct"), className="kpi-value", id=f"rev-top-{int(k * 100)}"),
        html.Div("of revenue in the range", className="small text-body-secondary"),
    ], className="p-3"), className="kpi-card mb-3") for k, v in shares.items()]
    cards.append(html.Div([c.paying_users_text(0 if p is None else len(p), revenue.buyers_in_range(f)),
                           *c.info("paying_users", "rev-paying")],
                          className="small text-body-secondary", id="rev-paying"))
    return (figures.conversion_by_device(revenue.conversion_by_device(f), f.grain, t),
            figures.pareto(p, t, revenue.reporting_currency()), cards)


@c.filter_callback(Output({"type": "chart", "id": "rev-currency"}, "figure"))
def update_currency(f: Filters, t: str):
    """Revenue, orders and original amounts per currency sent, over the range."""
    if not lake.has("revenue_by_currency_daily"):
        return c.absent("revenue_by_currency_daily", t)
    return figures.revenue_by_currency(revenue.revenue_by_currency(f), t, revenue.reporting_currency())
