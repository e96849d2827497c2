"""Funnel: step counts, step-to-step and overall conversion, drop-off, split by device, trend."""

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, html

from dashboard import components as c
from dashboard import figures
from dashboard.data.families import funnel
from dashboard.definitions import LABELS
from dashboard.filters import Filters
from dashboard.wording import count

dash.register_page(__name__, path="/funnel", name="Funnel", order=3, title="Funnel · Lakehouse", icon="funnel")

STEP_COLUMNS = [c.col("step_index", "#", "numeric"), c.col("step_name", "Step"),
                c.col("users", "Entries (user-days)", "numeric"),
                c.col("step_conversion", "From previous", "numeric", ".1%"),
                c.col("overall_conversion", "From first", "numeric", ".1%"),
                c.col("drop_off", "Drop-off", "numeric"),
                c.col("distinct_users", "Distinct users", "numeric"),
                c.col("user_conversion", "From first (users)", "numeric", ".1%")]
OPEN_LABEL = "Include entries whose window is not yet closed"


def layout(theme=None, **query):
    """Cards, the funnel, its split by device, the step table and the conversion trend."""
    args = c.initial_args(query, theme)
    return c.fill_layout(html.Div([
        c.page_header("Funnel", "item_view → add_to_cart → checkout_start → purchase, within 14 days of entry. "
                      "Counts are entries (user-days) summed over the range, unless they say distinct users.",
                      icon="funnel", info_key="funnel"),
        c.missing_tables_alert(["funnel_daily"]),
        c.filter_bar(query, applies=("date", "grain", "device")),
        dbc.Row(id="fun-cards", className="row-cols-1 row-cols-sm-2 row-cols-xl-4 g-3 mb-3"),
        dbc.Row([
            c.chart_card("fun-funnel", "Funnel", "funnel", width=6),
            c.chart_card("fun-device", "Conversion from the first step, by device", "funnel_device", width=6),
        ]),
        dbc.Row([
            c.table_card("fun-steps", "Steps", "drop_off", width=6),
            c.chart_card("fun-trend", "Funnel conversion over time", "overall_conversion", width=6,
                         controls=dbc.Switch(id="fun-open", label=OPEN_LABEL, value=False,
                                             className="small mb-0")),
        ]),
    ]), (update_funnel, args), (update_trend, args + (False,)))


def _card(label, value, sub, key):
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div([html.Span(label, className="kpi-label"), *c.info(key, f"fun-card-{label}")],
                 className="d-flex align-items-center"),
        html.Div(value, className="kpi-value"), html.Div(sub, className="small text-body-secondary"),
    ], className="p-3"), className="kpi-card h-100"))


def _users(steps, i) -> str:
    """'472 distinct users' at step i (or a dash when gold.funnel_entries is missing)."""
    n = steps["distinct_users"].iloc[i]
    return count(int(n), "distinct user") if n == n else "distinct users: —"


@c.filter_callback(Output("fun-cards", "children"), Output({"type": "chart", "id": "fun-funnel"}, "figure"),
                   Output({"type": "chart", "id": "fun-device"}, "figure"),
                   Output({"type": "table", "id": "fun-steps"}, "children"))
def update_funnel(f: Filters, t: str):
    """Cards, funnel, device split and step table for the date range and devices."""
    steps = funnel.funnel_steps(f)
    if steps is None:
        miss, why = c.absent("funnel_daily", t), c.absent_text("funnel_daily")
        return ([dbc.Col(c.empty_state(why))], miss, miss, c.table_view("fun-steps", None, STEP_COLUMNS, empty=why))
    if len(steps) and steps["users"].sum():
        worst = steps.iloc[1:].sort_values("step_conversion").head(1)
        still_open = steps["open_entries"].iloc[0]
        open_note = f"; {count(int(still_open), 'entry')} still inside the window" if still_open else ""
        cards = [
            _card("Entered", f"{steps['users'].iloc[0]:,.0f}",
                  f"entries (user-days) at {steps['step_name'].iloc[0]}; {_users(steps, 0)}", "funnel"),
            _card("Completed", f"{steps['users'].iloc[-1]:,.0f}",
                  f"entries (user-days) reaching {steps['step_name'].iloc[-1]}, not orders; {_users(steps, -1)}",
                  "funnel"),
            _card(LABELS["overall_conversion"], c.fmt_value(steps["overall_conversion"].iloc[-1], "pct"),
                  f"completed entries / entries; not buyer conversion{open_note}", "overall_conversion"),
            _card("Biggest drop-off", worst["step_name"].iloc[0] if len(worst) else "—",
                  f"only {worst['step_conversion'].iloc[0]:.1%} of the previous step" if len(worst) else "",
                  "drop_off"),
        ]
    else:
        cards = [dbc.Col(c.empty_state("No funnel entries for this filter"), width=12)]
    return (cards, figures.funnel(steps, t), figures.funnel_by_device(funnel.funnel_by_device(f), t),
            c.table_view("fun-steps", steps, STEP_COLUMNS))


@c.filter_callback(Output({"type": "chart", "id": "fun-trend"}, "figure"), Input("fun-open", "value"))
def update_trend(f: Filters, t: str, include_open):
    """Funnel conversion over time; entries whose window is not yet closed only when asked for."""
    over_time = funnel.funnel_over_time(f, include_open=bool(include_open))
    if over_time is None:
        return c.absent("funnel_daily", t)
    return figures.funnel_rate(over_time, f.grain, t)
