"""Pipeline health: table versions, freshness and sizes, quarantined lines, pipeline runs."""

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard import components as c
from dashboard import figures
from dashboard.data import health
from dashboard.data.families import revenue

dash.register_page(__name__, path="/health", name="Pipeline health", order=11, title="Pipeline health · Lakehouse",
                   icon="heart-pulse")

UNCONVERTED_COLUMNS = [c.col("activity_date", "Date"), c.col("currency", "Currency sent"),
                       c.col("orders", "Orders", "numeric"), c.col("amount", "Amount (as sent)", "numeric", ",.2f")]
TABLE_COLUMNS = [c.col("layer", "Layer"), c.col("table", "Table"), c.col("version", "Version", "numeric"),
                 c.col("updated_at", "Last update (UTC)"), c.col("rows", "Rows", "numeric"),
                 c.col("files", "Files", "numeric"), c.col("size_mb", "Size (MB)", "numeric", ",.2f"),
                 c.col("status", "Status")]
RUN_COLUMNS = [c.col("run_id", "Run"), c.col("started_at", "Started (UTC)"), c.col("ended_at", "Ended (UTC)"),
               c.col("status", "Status"), c.col("timezone", "Timezone"), c.col("files", "Files", "numeric"),
               c.col("lines", "Lines", "numeric"), c.col("silver_rows", "Silver rows", "numeric"),
               c.col("duplicates", "Duplicates", "numeric"), c.col("quarantined", "Quarantined", "numeric"),
               c.col("message", "Message")]
ERASURE_COLUMNS = [c.col("erasure_id", "Erasure"), c.col("requested_at", "Requested (UTC)"),
                   c.col("users", "User ids", "numeric"), c.col("status", "Status"),
                   c.col("old_files", "Replaced files on disk"), c.col("due_at", "Due (UTC)"),
                   c.col("deleted_at", "Completed (UTC)")]


def layout(theme=None, **query):
    """Status cards, table inventory, quarantine, run durations and history (refreshes every 30 s)."""
    return c.fill_layout(html.Div([
        c.page_header("Pipeline health", "Every Delta table of the lake with its version, freshness and size; "
                      "what was quarantined; the pipeline runs.", icon="heart-pulse"),
        dcc.Interval(id="health-tick", interval=30_000),
        dbc.Row(id="health-cards", className="row-cols-1 row-cols-sm-2 row-cols-xl-5 g-3 mb-3"),
        dbc.Row([c.table_card("health-tables", "Tables", "table_version", width=12)]),
        dbc.Row([
            c.chart_card("health-quarantine", "Quarantined lines by reason", "quarantine", width=6, height=None),
            c.chart_card("health-durations", "Latest run: seconds per step", None, width=6, height=None,
                         info_text="From ops.pipeline_runs.durations_json of the latest run."),
        ]),
        dbc.Row([c.table_card("health-unconverted", "Orders left out of revenue: currency without a rate", width=12)]),
        dbc.Row([c.table_card("health-runs", "Pipeline runs (latest first)", width=12)]),
        dbc.Row([c.table_card("health-erasures", "Erasures (lakehouse forget, latest first)", width=12,
                              info_text="Until the vacuum retention has passed, the data files a forget replaced "
                                        "still hold the erased rows; the first pipeline run after that date "
                                        "deletes them (docs/maintenance.md).")]),
    ]), (update_health, (0, theme)))


def _card(label, value, sub="", icon="info-circle", color="primary", cid=None):
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div([html.I(className=f"bi bi-{icon} me-2 text-{color}"), html.Span(label, className="kpi-label")]),
        html.Div(value, className="kpi-value", id=cid),
        html.Div(sub, className="small text-body-secondary"),
    ], className="p-3"), className="kpi-card h-100"))


@c.page_callback(Output("health-cards", "children"), Output({"type": "table", "id": "health-tables"}, "children"),
          Output({"type": "chart", "id": "health-quarantine"}, "figure"),
          Output({"type": "chart", "id": "health-durations"}, "figure"),
          Output({"type": "table", "id": "health-runs"}, "children"),
          Output({"type": "table", "id": "health-erasures"}, "children"),
          Output({"type": "table", "id": "health-unconverted"}, "children"),
          Input("health-tick", "n_intervals"), Input("theme-store", "data"))
def update_health(_tick, theme):
    """Re-read table versions and runs (cheap: listing _delta_log) on load and every 30 s."""
    t = c.theme_of(theme)
    tables = health.table_health()
    tables = tables.assign(size_mb=tables["size_bytes"] / 1e6)
    runs = health.pipeline_runs()
    last = health.last_run()
    q = health.quarantine()
    unconverted = revenue.unconverted_orders()
    present = int((tables["status"] == "ok").sum())
    missing = int((tables["status"] == "missing").sum())
    if last:
        when = last.get("ended_at") or last.get("started_at")
        run_card = _card("Last run", f"{when:%Y-%m-%d %H:%M}" if when is not None else "—",
                         f"UTC · {last.get('status', '?')} · run {last.get('run_id', '')}", "clock-history",
                         "success" if str(last.get("status", "")).lower() in ("success", "ok", "succeeded")
                         else "danger", cid="health-last-run")
    else:
        run_card = _card("Last run", "—", "no ops.pipeline_runs table", "clock-history", "secondary",
                         cid="health-last-run")
    cards = [
        run_card,
        _card("Reporting timezone", health.reporting_timezone(), "from the latest run", "globe2", cid="health-tz"),
        _card("Tables", f"{present}", f"{missing} expected gold table(s) missing" if missing else "all gold tables present",
              "table", "warning" if missing else "success", cid="health-table-count"),
        _card("Quarantined lines", f"{int(q['lines'].sum()):,}" if q is not None else "—",
              "gold.quarantine_summary" if q is not None else "no quarantine summary yet", "shield-exclamation",
              "danger" if q is not None and q["lines"].sum() else "secondary", cid="health-quarantined"),
        _unconverted_card(unconverted),
    ]
    run_cols = [x["id"] for x in RUN_COLUMNS]
    runs_view = c.table_view("health-runs", runs[[x for x in run_cols if x in runs.columns]] if runs is not None
                             else None, RUN_COLUMNS, max_rows=20, empty="No ops.pipeline_runs table yet")
    status_class = (lambda r: "table-warning" if r["status"] == "missing"
                    else ("table-danger" if str(r["status"]).startswith("error") else None))
    return (cards, c.table_view("health-tables", tables.drop(columns=["size_bytes"]), TABLE_COLUMNS, max_rows=200,
                                row_class=status_class),
            figures.quarantine(q, t) if q is not None else figures.missing("quarantine_summary", t),
            figures.durations(health.run_durations(last), t), runs_view,
            c.table_view("health-erasures", health.erasures(), ERASURE_COLUMNS, max_rows=50,
                         row_class=lambda r: "table-warning" if r["old_files"] == "overdue" else None,
                         empty="No erasures yet"),
            c.table_view("health-unconverted", unconverted, UNCONVERTED_COLUMNS, max_rows=100,
                         empty="Every order's currency had a rate" if unconverted is not None
                         else "No gold.revenue_by_currency_daily table yet"))


def _unconverted_card(u):
    """Orders whose currency had no rate on their date: left out of revenue (metrics.md)."""
    if u is None:
        return _card("Orders without a rate", "—", "no gold.revenue_by_currency_daily yet", "currency-exchange",
                     "secondary", cid="health-unconverted-orders")
    n = int(u["orders"].sum())
    codes = ", ".join(sorted(set(u["currency"].astype(str))))
    return _card("Orders without a rate", f"{n:,}",
                 f"left out of revenue ({revenue.reporting_currency() or 'reporting currency'}): {codes}" if n
                 else f"all converted to {revenue.reporting_currency() or 'the reporting currency'}",
                 "currency-exchange", "warning" if n else "success", cid="health-unconverted-orders")
