"""Users: a searchable, sortable, paginated list of gold.users and one user's profile (never an email)."""

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dash_table, dcc, html, no_update

from dashboard import components as c
from dashboard import figures
from dashboard.data import lake
from dashboard.data.activity import users_frame
from dashboard.data.families import revenue, users
from dashboard.wording import count

dash.register_page(__name__, path="/users", name="Users", order=9, title="Users · Lakehouse", icon="person-lines-fill")

PAGE_SIZE = 15
COLUMNS = [  # the key columns first: they are in view without scrolling sideways
    c.col("user_id", "User"), c.col("segment", "Segment"), c.col("active_days", "Active days", "numeric"),
    c.col("events", "Events", "numeric"), c.col("orders", "Orders", "numeric"),
    c.col("revenue", "Revenue", "numeric", ",.2f"), c.col("points_balance", "Points", "numeric"),
    c.col("last_active_date", "Last active"), c.col("first_seen_date", "First seen"), c.col("country", "Country"),
    c.col("age_group", "Age group"), c.col("gender", "Gender"), c.col("signup_channel", "Channel"),
    c.col("cluster", "Cluster", "numeric"), c.col("age", "Age", "numeric"),
]
PROFILE_FIELDS = [("user_id", "User"), ("first_seen_date", "First seen"), ("last_active_date", "Last active"),
                  ("gender", "Gender"), ("age", "Age"), ("age_group", "Age group"), ("country", "Country"),
                  ("signup_channel", "Signup channel"), ("segment", "Segment"), ("cluster", "Cluster"),
                  ("active_days", "Active days"), ("events", "Events"), ("orders", "Orders"),
                  ("revenue", "Revenue"), ("points_balance", "Points balance")]


def _one(v):
    return (v[0] if v else None) if isinstance(v, list) else v


def scope_text(active_only: bool, f) -> str:
    """What the list holds: every known user, or those active in the selected dates."""
    rng = lake.resolve(f)
    if not active_only:
        return "All known users, whatever the dates (the dates apply to the profile's chart)"
    if rng is None:
        return "Users active in the selected dates: no day of the lake is in them"
    return f"Users active in {c.fmt_date(rng[0])} – {c.fmt_date(rng[1])}"


def layout(segment=None, cluster=None, user=None, q=None, active=None, **query):
    """Filter bar, search controls, the users table and the profile panel."""
    segment, cluster, user, q = _one(segment), _one(cluster), _one(user), _one(q)
    active_only = _one(active) == "1"
    known = users_frame()
    segs = sorted(known["segment"].dropna().unique()) if known is not None and "segment" in known.columns else []
    clusters = sorted(int(x) for x in known["cluster"].dropna().unique()) \
        if known is not None and "cluster" in known.columns else []
    params = {k: v for k, v in {"segment": segment, "cluster": cluster, "user": user, "q": q,
                                "active": "1" if active_only else None}.items() if v}
    controls = dbc.Row([
        dbc.Col(dbc.InputGroup([dbc.InputGroupText(html.I(className="bi bi-search")),
                                dbc.Input(id="users-search", placeholder="Search user id, country, segment…",
                                          value=q or "", debounce=0.4, type="search")], size="sm"), md=5),
        dbc.Col(dcc.Dropdown(id="users-segment", options=[{"label": s, "value": s} for s in segs], value=segment,
                             placeholder="Any segment"), md=3),
        dbc.Col(dcc.Dropdown(id="users-cluster", options=[{"label": f"cluster {x}", "value": str(x)} for x in clusters],
                             value=str(cluster) if cluster not in (None, "") else None, placeholder="Cluster"),
                md=2),
        dbc.Col(html.Div(id="users-count", className="small text-body-secondary pt-1"), md=2),
        dbc.Col(dbc.Switch(id="users-active", label="Only users active in the selected dates", value=active_only,
                           className="small mb-0"), md="auto"),
        dbc.Col(html.Div(id="users-scope", className="small text-body-secondary"), md=True),
    ], className="g-2 mb-2 align-items-center")
    table = dash_table.DataTable(
        id="users-table", columns=c.money_columns(COLUMNS), data=[], page_current=0, page_size=PAGE_SIZE, page_action="custom",
        sort_action="custom", sort_mode="multi", sort_by=[], row_selectable=False, cell_selectable=True,
        style_table={"overflowX": "auto"},
        style_header={"backgroundColor": "var(--bs-tertiary-bg)", "color": "var(--bs-body-color)",
                      "fontWeight": "600", "border": "none", "borderBottom": "1px solid var(--bs-border-color)"},
        style_cell={"backgroundColor": "transparent", "color": "var(--bs-body-color)", "border": "none",
                    "borderBottom": "1px solid var(--bs-border-color-translucent)", "fontFamily": "var(--bs-body-font-family)",
                    "fontSize": "0.84rem", "padding": "6px 10px", "textAlign": "left", "cursor": "pointer"},
        css=[{"selector": ".dash-spreadsheet-menu", "rule": "display: none"}],
    )
    header = html.Div([html.Span("Users", className="card-title-text"), *c.info("users", "users-table"),
                       html.Span(className="ms-auto"), c.csv_button("ucsv", "users")],
                      className="d-flex align-items-center")
    return html.Div([
        c.page_header("Users", "Search and sort users; click a row to open a profile. Emails are never shown.",
                      icon="person-lines-fill"),
        c.missing_tables_alert(["users", "user_activity_daily"]),
        c.filter_bar(query, applies=("date", "country", "gender", "age_group"), page_params=params),
        dbc.Row([
            dbc.Col(dbc.Card([dbc.CardHeader(header, className="chart-header"),
                              dbc.CardBody([controls, dcc.Loading(table, type="dot", delay_show=300)],
                                           className="p-2")], className="chart-card"), xl=7, className="mb-3"),
            dbc.Col(html.Div(id="users-profile"), xl=5, className="mb-3"),
        ]),
        dcc.Store(id="users-selected", data=user),
    ])


def _filters(start, end, country, gender, age):
    return c.filters_from(start, end, "day", country, None, gender, age)


@callback(Output("users-table", "data"), Output("users-table", "page_count"), Output("users-count", "children"),
          Output("users-scope", "children"),
          Input("f-dates", "start_date"), Input("f-dates", "end_date"), Input("f-country", "value"),
          Input("f-gender", "value"), Input("f-age", "value"), Input("users-search", "value"),
          Input("users-segment", "value"), Input("users-cluster", "value"), Input("users-table", "page_current"),
          Input("users-table", "sort_by"), Input("users-active", "value"))
def update_table(start, end, country, gender, age, search, segment, cluster, page, sort_by, active_only=False):
    """One page of users for the filters, search, sort order and (when asked) activity in the dates."""
    f = _filters(start, end, country, gender, age)
    res = users.users_page(f, search or "", segment, cluster, sort_by, page or 0, PAGE_SIZE, bool(active_only))
    if res is None:
        return [], 1, "gold.users does not exist yet", ""
    rows, total = res
    return c.records(rows), max(1, -(-total // PAGE_SIZE)), count(total, "user"), scope_text(bool(active_only), f)


@callback(Output("users-table", "page_current"), Input("users-search", "value"), Input("users-segment", "value"),
          Input("users-cluster", "value"), Input("f-country", "value"), Input("f-gender", "value"),
          Input("f-age", "value"), Input("users-active", "value"), Input("f-dates", "start_date"),
          Input("f-dates", "end_date"), prevent_initial_call=True)
def back_to_first_page(*_):
    """A new search or filter starts at page 1."""
    return 0


@callback(Output("users-selected", "data"), Input("users-table", "active_cell"), State("users-table", "data"),
          prevent_initial_call=True)
def select_user(cell, rows):
    """Clicking a row opens that user's profile."""
    if not cell or not rows or cell.get("row") is None or cell["row"] >= len(rows):
        return no_update
    return rows[cell["row"]]["user_id"]


@callback(Output("page-params", "data"), Input("users-search", "value"), Input("users-segment", "value"),
          Input("users-cluster", "value"), Input("users-selected", "data"), Input("users-active", "value"),
          prevent_initial_call=True)
def remember_in_url(search, segment, cluster, user, active_only=False):
    """Search, segment, cluster, the open profile and 'only active users' go into the URL too."""
    return {k: v for k, v in {"q": search, "segment": segment, "cluster": cluster, "user": user,
                              "active": "1" if active_only else None}.items() if v}


def _fmt(key, v):
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
        return "—"
    if key == "revenue":
        cur = revenue.reporting_currency()
        return f"{float(v):,.2f}" + (f" {cur}" if cur else "")
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


@callback(Output("users-profile", "children"), Input("users-selected", "data"), Input("f-dates", "start_date"),
          Input("f-dates", "end_date"), Input("theme-store", "data"))
def show_profile(user_id, start, end, theme):
    """The selected user's attributes and daily activity in the range."""
    t = c.theme_of(theme)
    if not user_id:
        return dbc.Card(dbc.CardBody(c.empty_state("Select a user in the table to see their profile",
                                                   "person-badge")), className="chart-card")
    prof = users.user_profile(user_id)
    if prof is None:
        return dbc.Card(dbc.CardBody(c.empty_state(f"No user {user_id}", "person-x")), className="chart-card")
    f = c.filters_from(start, end, "day", None, None, None, None)
    rng = lake.resolve(f)
    act = users.user_activity(user_id, *rng) if rng else None  # no day of the lake in range: nothing
    attrs = html.Dl([item for key, label in PROFILE_FIELDS if key in prof
                     for item in (html.Dt(label, className="col-5"), html.Dd(_fmt(key, prof[key]), className="col-7"))],
                    className="row profile-attr mb-0")
    fig = figures.user_activity(act, t, revenue.reporting_currency())
    head = html.Div([html.Span(["Profile ", html.Code(user_id)], className="card-title-text"),
                     html.Span(className="ms-auto"), c.csv_button("csv", "user-activity")],
                    className="d-flex align-items-center")
    return dbc.Card([
        dbc.CardHeader(head, className="chart-header"),
        dbc.CardBody([
            attrs,
            html.Div("Daily activity in the selected range", className="small fw-semibold mt-3 mb-1"),
            dcc.Graph(id={"type": "chart", "id": "user-activity"}, figure=fig, config=c.graph_config("user-activity"),
                      style={"height": "260px"}),
        ], className="p-3"),
    ], className="chart-card", id="profile-card")


@callback(Output({"type": "ucsv-dl", "id": "users"}, "data"), Input({"type": "ucsv-btn", "id": "users"}, "n_clicks"),
          State("f-dates", "start_date"), State("f-dates", "end_date"), State("f-country", "value"),
          State("f-gender", "value"), State("f-age", "value"), State("users-search", "value"),
          State("users-segment", "value"), State("users-cluster", "value"), State("users-table", "sort_by"),
          State("users-active", "value"), prevent_initial_call=True)
def download_users(n, start, end, country, gender, age, search, segment, cluster, sort_by, active_only=False):
    """The whole filtered list as CSV (not just the visible page)."""
    if not n:
        return no_update
    df = users.users_export(_filters(start, end, country, gender, age), search or "", segment, cluster, sort_by,
                           bool(active_only))
    if df is None:
        return no_update
    return dcc.send_data_frame(df.to_csv, "users.csv", index=False)
