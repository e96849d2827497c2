"""Funnel: step counts, step-to-step and overall conversion, drop-off, split by device, trend."""

import dash
import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard import components as c
from dashboard import data, figures
from dashboard.definitions import LABELS

dash.register_page(__name__, path="/funnel", name="Funnel", order=3, title="Funnel · Lakehouse", icon="funnel")

STEP_COLUMNS = [c.col("step_index", "#", "numeric"), c.col("step_name", "Step"),
                c.col("users", "Entries (user-days)", "numeric"),
                c.col("step_conversion", "From previous", "numeric", ".1%"),
                c.col("overall_conversion", "From first", "numeric", ".1%"),
                c.col("drop_off", "Drop-off", "numeric")]


def layout(theme=None, **query):
    """Cards, the funnel, its split by device, the step table and the conversion trend."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Funnel", "item_view → add_to_cart → checkout_start → purchase, within 14 days of entry. "
                      "Counts are user-days summed over the range.", icon="funnel", info_key="funnel"),
        c.missing_tables_alert(["funnel_daily"]),
        c.filter_bar(query, applies=("date", "grain", "device")),
        dbc.Row(id="fun-cards", className="row-cols-1 row-cols-sm-2 row-cols-xl-4 g-3 mb-3"),
        dbc.Row([
            c.chart_card("fun-funnel", "Funnel", "funnel", width=6),
            c.chart_card("fun-device", "Conversion from the first step, by device", "funnel_device", width=6),
        ]),
        dbc.Row([
            c.table_card("fun-steps", "Steps", "drop_off", width=6),
            c.chart_card("fun-trend", "Funnel conversion over time", "overall_conversion", width=6),
        ]),
    ]), (update_funnel, args))


def _card(label, value, sub, key):
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div([html.Span(label, className="kpi-label"), *c.info(key, f"fun-card-{label}")],
                 className="d-flex align-items-center"),
        html.Div(value, className="kpi-value"), html.Div(sub, className="small text-body-secondary"),
    ], className="p-3"), className="kpi-card h-100"))


@c.page_callback(Output("fun-cards", "children"), Output({"type": "chart", "id": "fun-funnel"}, "figure"),
          Output({"type": "chart", "id": "fun-device"}, "figure"), Output({"type": "table", "id": "fun-steps"}, "children"),
          Output({"type": "chart", "id": "fun-trend"}, "figure"), *c.FILTER_INPUTS)
def update_funnel(start, end, grain, country, device, gender, age, theme):
    """Everything on the page for the date range and devices."""
    f = c.filters_from(start, end, grain, country, device, gender, age)
    t = c.theme_of(theme)
    steps = data.funnel_steps(f)
    if steps is None:
        miss, why = c.absent("funnel_daily", t), c.absent_text("funnel_daily")
        return ([dbc.Col(c.empty_state(why))], miss, miss, c.table_view("fun-steps", None, STEP_COLUMNS, empty=why),
                miss)
    if len(steps) and steps["users"].sum():
        worst = steps.iloc[1:].sort_values("step_conversion").head(1)
        cards = [
            _card("Entered", f"{steps['users'].iloc[0]:,.0f}", f"entries (user-days) at {steps['step_name'].iloc[0]}",
                  "funnel"),
            _card("Completed", f"{steps['users'].iloc[-1]:,.0f}",
                  f"entries (user-days) reaching {steps['step_name'].iloc[-1]}, not orders", "funnel"),
            _card(LABELS["overall_conversion"], c.fmt_value(steps["overall_conversion"].iloc[-1], "pct"),
                  "completed entries / entries; not buyer conversion", "overall_conversion"),
            _card("Biggest drop-off", worst["step_name"].iloc[0] if len(worst) else "—",
                  f"only {worst['step_conversion'].iloc[0]:.1%} of the previous step" if len(worst) else "",
                  "drop_off"),
        ]
    else:
        cards = [dbc.Col(c.empty_state("No funnel entries for this filter"), width=12)]
    return (cards, figures.funnel(steps, t), figures.funnel_by_device(data.funnel_by_device(f), t),
            c.table_view("fun-steps", steps, STEP_COLUMNS),
            figures.funnel_rate(data.funnel_over_time(f), f.grain, t))
