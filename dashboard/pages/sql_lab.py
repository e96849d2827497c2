"""SQL Lab: a read-only SQL editor over the gold tables and silver.events / silver.sessions (DuckDB on Arrow),
results grid and CSV."""

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dash_table, dcc, html, no_update

from dashboard import components as c
from dashboard.data import catalog
from dashboard import sql_lab as engine

dash.register_page(__name__, path="/sql-lab", name="SQL Lab", order=10, title="SQL Lab · Lakehouse",
                   icon="terminal")

FIRST_EXAMPLE = next(iter(engine.EXAMPLES.values()))


def _table_item(qualified, schema, rows, icon):
    return html.Details([
        html.Summary([html.I(className=f"bi {icon} me-1 text-primary"), qualified,
                      html.Span(f" {rows:,}" if rows is not None else "", className="col-type ms-1")]),
        html.Ul([html.Li([f.name, " ", html.Span(str(f.type), className="col-type")]) for f in schema],
                className="list-unstyled ms-3 mb-1"),
    ])


def _schema_browser():
    tables = catalog.sql_tables()
    if not tables:
        return c.empty_state("No gold tables yet")
    gold = sorted(k for k in tables if k.startswith("gold."))
    silver = sorted(k for k in tables if k.startswith("silver."))
    items = [_table_item(k, tables[k].schema, tables[k].num_rows, "bi-table") for k in gold]
    if silver:
        items.append(html.Div("silver (scanned in place; no personal data)", className="small text-muted mt-2 mb-1",
                              title="Left out: " + ", ".join(sorted(catalog.SQL_WITHHELD_COLUMNS)) + "; and "
                                    + ", ".join(sorted(catalog.SQL_NOT_OFFERED)) + ". See docs/dashboard.md."))
        items += [_table_item(k, tables[k].schema, catalog.sql_table_rows(k), "bi-table") for k in silver]
    return html.Div(items, className="schema-browser", id="sql-schema")


def layout(**query):
    """Schema browser, editor with Run / examples / CSV, results grid."""
    toolbar = html.Div([
        dbc.Button([html.I(className="bi bi-play-fill me-1"), "Run"], id="sql-run", color="primary", size="sm",
                   title="Run (Ctrl+Enter)"),
        dbc.Select(id="sql-example", options=[{"label": k, "value": k} for k in engine.EXAMPLES],
                   placeholder="Examples…", size="sm", style={"width": "280px"}, className="ms-2"),
        html.Span(className="ms-auto"),
        dbc.Button([html.I(className="bi bi-download me-1"), "Download CSV"], id="sql-csv", color="secondary",
                   outline=True, size="sm"),
        dcc.Download(id="sql-dl"),
    ], className="d-flex align-items-center mb-2")
    return html.Div([
        c.page_header("SQL Lab", "Read-only SQL over the gold tables (gold.<table> or <table>) and silver.events, "
                      "silver.sessions without personal data. One SELECT/WITH "
                      f"query; at most {engine.MAX_ROWS:,} rows and {engine.MAX_BYTES // 2**20} MB shown; stopped after "
                      f"{engine.TIMEOUT_S:g} s or {engine.QUERY_MEMORY // 2**20} MB of memory.",
                      icon="terminal"),
        dbc.Row([
            dbc.Col(dbc.Card([dbc.CardHeader("Tables", className="chart-header"),
                              dbc.CardBody(_schema_browser(), className="p-2")], className="chart-card h-100"),
                    lg=3, className="mb-3"),
            dbc.Col(dbc.Card(dbc.CardBody([
                toolbar,
                dcc.Textarea(id="sql-text", value=FIRST_EXAMPLE, className="sql-editor", spellCheck=False),
                html.Div(id="sql-status", className="small mt-2"),
                dcc.Loading(dash_table.DataTable(
                    id="sql-results", columns=[], data=[], page_size=25, sort_action="native",
                    style_table={"overflowX": "auto"},
                    style_header={"backgroundColor": "var(--bs-tertiary-bg)", "color": "var(--bs-body-color)",
                                  "fontWeight": "600", "border": "none"},
                    style_cell={"backgroundColor": "transparent", "color": "var(--bs-body-color)", "border": "none",
                                "borderBottom": "1px solid var(--bs-border-color-translucent)",
                                "fontFamily": "SFMono-Regular, Menlo, Consolas, monospace", "fontSize": "0.8rem",
                                "padding": "4px 8px", "textAlign": "left", "maxWidth": "260px",
                                "overflow": "hidden", "textOverflow": "ellipsis"},
                    css=[{"selector": ".dash-spreadsheet-menu", "rule": "display: none"}],
                ), type="dot", delay_show=300),
            ], className="p-3"), className="chart-card"), lg=9, className="mb-3"),
        ]),
    ])


@callback(Output("sql-text", "value"), Input("sql-example", "value"), prevent_initial_call=True)
def load_example(name):
    """Put an example query in the editor."""
    return engine.EXAMPLES.get(name, no_update)


def _columns(table):
    out = []
    for f in table.schema:
        col = {"id": f.name, "name": f.name}
        if str(f.type).startswith(("int", "uint", "double", "float", "decimal")):
            col["type"] = "numeric"
        out.append(col)
    return out


def _rows(table):
    df = table.to_pandas()
    for col in df.columns:
        if df[col].dtype.kind in "mM" or df[col].dtype == object:
            df[col] = df[col].map(lambda v: v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
    return df.astype(object).where(df.notna(), None).to_dict("records")


@callback(Output("sql-results", "columns"), Output("sql-results", "data"), Output("sql-status", "children"),
          Input("sql-run", "n_clicks"), State("sql-text", "value"), prevent_initial_call=True)
def run(_n, sql):
    """Run the query (refused queries and timeouts give a clear message)."""
    try:
        res = engine.run_query(sql or "", catalog.sql_tables())
    except engine.QuerySyntaxError as exc:
        return [], [], dbc.Alert([html.I(className="bi bi-exclamation-triangle me-2"), str(exc)], color="danger",
                                 className="py-2 mb-2", id="sql-error")
    except engine.QueryRefused as exc:
        return [], [], dbc.Alert([html.I(className="bi bi-shield-lock me-2"), html.B("Query refused. "), str(exc)],
                                 color="danger", className="py-2 mb-2", id="sql-error")
    except (engine.QueryTimeout, engine.QueryOutOfMemory) as exc:
        return [], [], dbc.Alert([html.I(className="bi bi-stopwatch me-2"), str(exc)], color="warning",
                                 className="py-2 mb-2", id="sql-error")
    except Exception as exc:  # noqa: BLE001 - SQL errors are the user's to read
        return [], [], dbc.Alert([html.I(className="bi bi-exclamation-triangle me-2"), str(exc)], color="danger",
                                 className="py-2 mb-2", id="sql-error")
    n = res.table.num_rows
    note = [html.I(className="bi bi-check-circle text-success me-1"),
            f"{n:,} row{'s' if n != 1 else ''} in {res.seconds * 1000:,.0f} ms"]
    if res.note:
        note += [html.Span(f" · {res.note} (add a LIMIT or filters; the CSV download has up to "
                           f"{engine.MAX_EXPORT_ROWS:,} rows and {engine.MAX_EXPORT_BYTES // 2**20} MB)",
                           className="text-warning fw-semibold", id="sql-truncated")]
    return _columns(res.table), _rows(res.table), html.Div(note, id="sql-ok", className="mb-2")


@callback(Output("sql-dl", "data"), Input("sql-csv", "n_clicks"), State("sql-text", "value"),
          prevent_initial_call=True)
def download(_n, sql):
    """Run the query again for the CSV (same rules, up to 1,000,000 rows)."""
    try:
        res = engine.run_query(sql or "", catalog.sql_tables(), max_rows=engine.MAX_EXPORT_ROWS,
                               max_bytes=engine.MAX_EXPORT_BYTES, max_cell_chars=engine.MAX_EXPORT_CELL_CHARS)
    except Exception:  # noqa: BLE001 - the Run button shows the reason
        return no_update
    # a cut result says so in its name (the file holds only the data)
    name = f"query-first-{res.table.num_rows}-rows.csv" if res.truncated else "query.csv"
    if res.cut_values:
        name = name.replace(".csv", "-long-values-shortened.csv")
    return dcc.send_data_frame(res.table.to_pandas().to_csv, name, index=False)
